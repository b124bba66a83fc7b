# frozen_string_literal: true

require "socket"
require "digest"
require "uri"

module HCTest
  # An HTTP proxy on loopback, in front of the S3 test server, that throws the faults real S3
  # throws at heavy users, by rule: 503 SlowDown, 500 InternalError, a connection reset in the
  # middle of the request body (or of the answer), a stall, a 200 whose body is an <Error>, or any
  # canned answer. It also:
  # - checks every x-amz-content-sha256 against the body it came with (400 on a mismatch), so a
  #   bad hash shows even where a fault answers in S3's place;
  # - counts the multipart uploads initiated, completed and aborted (as S3 answered them), so a
  #   test can assert that none is left open.
  # One request per connection (it answers "Connection: close"); every wait is bounded.
  class FaultProxy
    Rule = Struct.new(:action, :method, :path, :query, :times, :hits, :status, :body, :seconds, keyword_init: true)
    # received_at: when its whole body was in (monotonic s); answered_at: when its answer began to
    # be written back (once it all was), nil while it is in flight or when none was.
    Request = Struct.new(:method, :path, :query, :headers, :body, :received_at, :answered_at)

    UNANSWERED = %i[reset reset_response stall].freeze # faults that never give an answer
    # A :respond body for a refusal (status: 403).
    ACCESS_DENIED = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    MAX_STALL = 60 # seconds a stalled request is held at most (the client gives up long before)
    IO_TIMEOUT = 30

    attr_reader :port, :requests, :initiated, :completed, :aborted, :sha_mismatches

    def initialize(upstream_port)
      @upstream_port = upstream_port
      @server = TCPServer.new("127.0.0.1", 0)
      @port = @server.addr[1]
      @rules = []
      @requests = []
      @initiated = []
      @completed = []
      @aborted = []
      @sha_mismatches = 0
      @holding = 0
      @lock = Mutex.new
      @threads = []
      @stopping = false
    end

    def self.start(upstream_port) = new(upstream_port).start

    def endpoint = "http://127.0.0.1:#{port}"

    def start
      @acceptor = Thread.new { accept_loop }
      self
    end

    def stop
      @stopping = true
      @server.close unless @server.closed?
      @acceptor&.join(5)
      @lock.synchronize { @threads.dup }.each { |t| t.join(5) || t.kill }
    end

    # Adds a fault. action: :slowdown, :internal_error, :reset (mid request body),
    # :reset_response (mid answer), :stall, :error_in_200, :respond (status:, body:),
    # :delay (seconds:; the request reaches S3 at once, its answer is held back that long),
    # :hold_tail (seconds:; S3 gets the request but its body's last byte that much later: the
    # client has sent it all, S3 is still storing it - the window where an abort races a part),
    # :corrupt (one byte of the body, in its middle, is changed on its way to S3).
    # method/path/query: String or Regexp to match (query is the raw query string).
    # times: how many matching requests get the fault (nil: every one).
    def add(action, method: nil, path: nil, query: nil, times: 1, status: nil, body: nil, seconds: nil)
      rule = Rule.new(action: action, method: method, path: path, query: query, times: times, hits: 0,
                      status: status, body: body, seconds: seconds)
      @lock.synchronize { @rules << rule }
      rule
    end

    def clear_rules
      @lock.synchronize { @rules.clear }
    end

    # Upload ids initiated and neither completed nor aborted.
    def open_uploads
      @lock.synchronize { @initiated - @completed - @aborted }
    end

    # Requests whose last byte a :hold_tail rule holds back from S3 right now.
    def holding = @lock.synchronize { @holding }

    def count(method, query = nil)
      @lock.synchronize do
        @requests.count { |r| r.method == method && (query.nil? || r.query.match?(query)) }
      end
    end

    private

    def accept_loop
      until @stopping
        client = begin
          @server.accept
        rescue IOError, Errno::EBADF, Errno::EINVAL
          break
        end
        thread = Thread.new(client) { |sock| serve(sock) }
        @lock.synchronize { @threads << thread }
      end
    end

    def serve(sock)
      request = read_request(sock)
      return unless request

      @lock.synchronize { @requests << request }
      rule = matching_rule(request)
      if rule
        fault(sock, request, rule)
      elsif !sha_ok?(request)
        @lock.synchronize { @sha_mismatches += 1 }
        respond(sock, 400, error_xml("XAmzContentSHA256Mismatch",
                                     "The provided 'x-amz-content-sha256' header does not match what was computed."))
      else
        forward(sock, request)
      end
      # When the answer began to go out: the client cannot act on it (send its next request) before.
      request.answered_at = Thread.current[:answer_started_at] unless rule && UNANSWERED.include?(rule.action)
    rescue IOError, SystemCallError
      nil
    ensure
      sock.close unless sock.closed?
    end

    def matching_rule(request)
      @lock.synchronize do
        rule = @rules.find do |r|
          (r.times.nil? || r.hits < r.times) && match?(r.method, request.method) &&
            match?(r.path, request.path) && match?(r.query, request.query)
        end
        rule.hits += 1 if rule
        rule
      end
    end

    def match?(want, got)
      want.nil? || (want.is_a?(Regexp) ? want.match?(got) : want == got)
    end

    def fault(sock, request, rule)
      case rule.action
      when :slowdown
        respond(sock, 503, error_xml("SlowDown", "Please reduce your request rate."))
      when :internal_error
        respond(sock, 500, error_xml("InternalError", "We encountered an internal error. Please try again."))
      when :error_in_200
        respond(sock, 200, error_xml("InternalError", "We encountered an internal error. Please try again."))
      when :respond
        respond(sock, rule.status || 200, rule.body.to_s)
      when :reset
        reset(sock)
      when :reset_response
        status, headers, body = upstream(request)
        head = "HTTP/1.1 #{status}\r\n#{headers.map { |k, v| "#{k}: #{v}\r\n" }.join}\r\n"
        sock.write(head + body.byteslice(0, body.bytesize / 2))
        reset(sock)
      when :stall
        hold(sock, MAX_STALL)
      when :delay
        forward(sock, request, delay: rule.seconds || 1)
      when :hold_tail
        forward(sock, request, hold_tail: rule.seconds || 1)
      when :corrupt
        forward(sock, corrupted(request))
      else
        raise ArgumentError, "unknown fault #{rule.action.inspect}"
      end
    end

    # A copy of the request whose body has its middle byte flipped (headers and signature kept).
    def corrupted(request)
      body = request.body.dup
      middle = body.bytesize / 2
      body.setbyte(middle, body.getbyte(middle) ^ 0x20) unless body.empty?
      request.dup.tap { |copy| copy.body = body }
    end

    def abort_request?(request)
      request.method == "DELETE" && request.query.match?(/(\A|&)uploadId=/)
    end

    # Closes with a TCP RST instead of a FIN: the peer sees "connection reset by peer".
    def reset(sock)
      sock.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii"))
      sock.close
    end

    # Waits up to seconds, less when the proxy stops or the client hangs up.
    def hold(sock, seconds)
      deadline = monotonic + [seconds, MAX_STALL].min
      sleep 0.05 until @stopping || monotonic > deadline || peer_closed?(sock)
    end

    def peer_closed?(sock)
      return false unless sock.wait_readable(0)

      sock.read_nonblock(1, exception: false).nil?
    rescue SystemCallError, IOError
      true
    end

    # delay: seconds to hold the answer back once S3 has acted on the request.
    def forward(sock, request, delay: 0, hold_tail: 0)
      status, headers, body = upstream(request, hold_tail: hold_tail)
      if request.method == "POST" && request.query.match?(/(\A|&)uploads(=|&|\z)/) && status.start_with?("200")
        id = body[%r{<UploadId>([^<]+)</UploadId>}, 1]
        @lock.synchronize { @initiated << id } if id
      elsif request.method == "POST" && request.query.match?(/(\A|&)uploadId=/) && status.start_with?("200") &&
            body.include?("<CompleteMultipartUploadResult")
        upload_id = query_param(request.query, "uploadId")
        @lock.synchronize { @completed << upload_id }
      elsif abort_request?(request) && status.start_with?("204")
        @lock.synchronize { @aborted << query_param(request.query, "uploadId") }
      end
      hold(sock, delay) if delay.positive?
      headers = headers.reject { |k, _| %w[connection transfer-encoding content-length keep-alive].include?(k.downcase) }
      head = "HTTP/1.1 #{status}\r\n#{headers.map { |k, v| "#{k}: #{v}\r\n" }.join}" \
             "Content-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n"
      Thread.current[:answer_started_at] = monotonic
      sock.write(head)
      sock.write(body) unless request.method == "HEAD"
    end

    # Sends the request to the S3 server unchanged (the signature covers the Host header, so it
    # stays) and returns [status line tail, [[name, value]...], body].
    def upstream(request, hold_tail: 0)
      up = Socket.tcp("127.0.0.1", @upstream_port, connect_timeout: 5)
      headers = request.headers.reject { |k, _| %w[connection expect].include?(k.downcase) }
      up.write("#{request.method} #{request.path}#{"?#{request.query}" unless request.query.empty?} HTTP/1.1\r\n" \
               "#{headers.map { |k, v| "#{k}: #{v}\r\n" }.join}Connection: close\r\n\r\n")
      if hold_tail.positive? && !request.body.empty?
        up.write(request.body.byteslice(0..-2))
        @lock.synchronize { @holding += 1 }
        sleep [hold_tail, MAX_STALL].min # not cut short when the client hangs up: S3 has the bytes
        @lock.synchronize { @holding -= 1 }
        up.write(request.body.byteslice(-1))
      else
        up.write(request.body)
      end
      raw = read_all(up)
      head, body = raw.split("\r\n\r\n", 2)
      lines = head.split("\r\n")
      status = lines.shift.split(" ", 2)[1]
      resp_headers = lines.map { |l| l.split(":", 2).map(&:strip) }
      body = dechunk(body.to_s) if resp_headers.any? { |k, v| k.casecmp?("transfer-encoding") && v =~ /chunked/i }
      [status, resp_headers, body.to_s]
    ensure
      up&.close
    end

    def read_all(io)
      data = String.new(encoding: Encoding::BINARY)
      deadline = monotonic + IO_TIMEOUT
      loop do
        raise IOError, "upstream timed out" if monotonic > deadline

        chunk = io.read_nonblock(1 << 16, exception: false)
        case chunk
        when :wait_readable then io.wait_readable(1)
        when nil then return data
        else data << chunk
        end
      end
    end

    def dechunk(body)
      out = String.new(encoding: Encoding::BINARY)
      until body.empty?
        size_line, body = body.split("\r\n", 2)
        size = size_line.to_i(16)
        break if size.zero?

        out << body.byteslice(0, size)
        body = body.byteslice(size + 2..) || ""
      end
      out
    end

    def read_request(sock)
      head = String.new(encoding: Encoding::BINARY)
      deadline = monotonic + IO_TIMEOUT
      until (idx = head.index("\r\n\r\n"))
        return nil if monotonic > deadline

        chunk = sock.read_nonblock(1 << 16, exception: false)
        return nil if chunk.nil?

        chunk == :wait_readable ? sock.wait_readable(1) : head << chunk
      end
      body = head.byteslice(idx + 4..)
      lines = head.byteslice(0, idx).split("\r\n")
      method, target, = lines.shift.split(" ")
      headers = lines.map { |l| l.split(":", 2).map(&:strip) }
      length = headers.find { |k, _| k.casecmp?("content-length") }&.last.to_i
      path, query = target.split("?", 2)
      request = Request.new(method, path, query.to_s, headers, body, nil, nil)
      # A reset rule fires mid-body: read only half of it before resetting.
      rule = peek_rule(request)
      want = rule&.action == :reset ? length / 2 : length
      while body.bytesize < want
        return nil if monotonic > deadline

        chunk = sock.read_nonblock(1 << 16, exception: false)
        return nil if chunk.nil?

        chunk == :wait_readable ? sock.wait_readable(1) : body << chunk
      end
      request.body = body
      request.received_at = monotonic
      request
    end

    def peek_rule(request)
      @lock.synchronize do
        @rules.find do |r|
          (r.times.nil? || r.hits < r.times) && match?(r.method, request.method) &&
            match?(r.path, request.path) && match?(r.query, request.query)
        end
      end
    end

    def sha_ok?(request)
      claimed = request.headers.find { |k, _| k.casecmp?("x-amz-content-sha256") }&.last
      return true unless claimed&.match?(/\A\h{64}\z/)

      Digest::SHA256.hexdigest(request.body) == claimed
    end

    def respond(sock, status, body)
      reason = { 200 => "OK", 204 => "No Content", 400 => "Bad Request", 403 => "Forbidden",
                 500 => "Internal Server Error", 503 => "Service Unavailable" }.fetch(status, "Status")
      type = body.empty? ? "" : "Content-Type: application/xml\r\n"
      Thread.current[:answer_started_at] = monotonic
      sock.write("HTTP/1.1 #{status} #{reason}\r\n#{type}Content-Length: #{body.bytesize}\r\n" \
                 "x-amz-request-id: FAULTPROXY#{rand(1_000_000)}\r\nConnection: close\r\n\r\n#{body}")
    end

    def error_xml(code, message)
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>#{code}</Code><Message>#{message}</Message>" \
        "<RequestId>FAULTPROXY</RequestId></Error>"
    end

    def query_param(query, name)
      query.split("&").map { |kv| kv.split("=", 2) }.find { |k, _| k == name }&.last.to_s
           .then { |v| URI.decode_www_form_component(v) }
    end

    def monotonic = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end
