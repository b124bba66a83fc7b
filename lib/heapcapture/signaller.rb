# frozen_string_literal: true

module HeapCapture
  # HeapCapture.signal: one NOTIFY per selected dyno, on a short-lived connection of its own; with
  # wait:, the replies to this request (see Wire) until every process that acknowledged has sent
  # its result, or the time is up. With a signal_key each notification is signed (Signing) and
  # carries a reply key made for this call: the result's URL comes sealed to it. A result with a
  # location but no URL (an unsigned request's) gets one presigned here when this process can.
  class Signaller
    APPLICATION_NAME = "heapcapture signal"
    CONNECT_TIMEOUT = 10
    NOTIFY_TIMEOUT = 10
    SETTLE = 0.3 # seconds to wait for late acknowledgements once every known process replied

    attr_reader :channels, :wait, :results

    def initialize(payload, process_type:, dynos:, wait:, trace_for: nil)
      @trace_for = trace_for && Tracing.window_seconds!(trace_for)
      @key = HeapCapture.config.signal_key
      @reply_public, @reply_secret = Seal.keypair if @key && Seal::AVAILABLE
      @text = Wire.payload!(payload)
      @payload = Wire.signal_text(@text, @trace_for) # what goes unsigned; signed per channel in call
      @channels = Dyno.channels(process_type, dynos)
      @dyno_names = Dyno.names(process_type, dynos)
      @wait = seconds(wait)
    end

    # The channels notified, or with wait: the results received (Hashes, string keys).
    # Afterwards, with wait: #unanswered names the selected dynos that sent no result.
    def call
      connection = Listener::Connection.new(HeapCapture.config.database_url!, @wait ? Wire::REPLY_CHANNEL : nil,
                                            APPLICATION_NAME, false)
      connection.connect(CONNECT_TIMEOUT) # with wait: LISTENs on heapcapture_reply before anything is sent
      request_id = connection.backend_pid
      @channels.each { |channel| connection.notify(channel, text_for(channel), NOTIFY_TIMEOUT) }
      Log.info("signalled #{@channels.join(', ')} (request #{request_id}, #{@payload.bytesize} bytes" \
               "#{@trace_for ? ", full allocation tracing for #{@trace_for} s first" : ''}" \
               "#{@key ? ', signed' : ''})")
      @wait ? collect(connection, request_id) : @channels
    ensure
      connection&.close
    end

    private

    def text_for(channel)
      return @payload unless @key

      reply_key = @reply_public && [@reply_public].pack("m0")
      Wire.signed_text(@text, @trace_for, channel: channel, key: @key, reply_key: reply_key)
    end

    # A result as the caller of signal reads it: its sealed part opened, and a presigned URL where
    # the reply gave a location only (and this process has the bucket's credentials).
    def readable(reply)
      reply = Signing.open_reply(reply, @reply_public, @reply_secret)
      return reply if reply["url"] || !reply["location"].to_s.start_with?("s3://")

      bucket, key = Destination::S3Bucket.split(reply["location"])
      @stores ||= {} # one client per bucket, whatever the number of results
      store = @stores[bucket] ||= Destination::S3Bucket.of_bucket(HeapCapture.config, bucket)
      reply.merge("url" => store.presigned_url(key))
    rescue Error, ArgumentError
      reply # no credentials here for that bucket: the location is what there is
    end

    # Raised without a cause, so that a console or Rake shows the one message once.
    def seconds(wait)
      return nil if wait.nil?

      value = Float(wait, exception: false)
      return value if value && !value.negative? && !value.nan?

      raise ArgumentError, Util.prefixed("wait must be a number of seconds >= 0, got #{wait.inspect}")
    end

    def collect(connection, request_id)
      deadline = Util.monotonic + @wait
      acks = {}
      results = {}
      heard_on = {}
      settled_at = nil
      loop do
        # Once everything looks answered, listen a little longer for a late acknowledgement
        # (several processes can listen on one channel).
        settled_at = done?(acks, results, heard_on) ? (settled_at || [Util.monotonic + SETTLE, deadline].min) : nil
        left = (settled_at || deadline) - Util.monotonic
        break if left <= 0

        begin
          notes = connection.wait(left)
        rescue ConnectionError => e
          Log.warn("stopped waiting for replies: #{Util.unprefixed(e.message)}")
          break
        end
        notes.each do |channel, _be_pid, text|
          reply = channel == Wire::REPLY_CHANNEL && Wire.parse_reply(text)
          next unless reply && reply["request_id"] == request_id

          process = [reply["dyno"], reply["pid"]]
          heard_on[reply["channel"]] = true
          acks[process] ||= reply
          results[process] = readable(reply) unless reply["status"] == "ack"
        end
      end
      Log.info("#{results.size} of #{acks.size} acknowledging process(es) replied to request #{request_id}")
      @acks = acks.values
      @results = results.values
    end

    public

    # With wait:, after call: each selected dyno that sent no result, as { "dyno", "channel",
    # "acknowledged_by" => [pid, ...] } (the processes that acknowledged on its channel but sent no
    # result in time; empty when nothing answered there at all).
    def unanswered
      answered = @results.map { |r| r["channel"] }
      @dyno_names.zip(@channels).filter_map do |dyno, channel|
        next if answered.include?(channel)

        { "dyno" => dyno, "channel" => channel,
          "acknowledged_by" => @acks.select { |ack| ack["channel"] == channel }.map { |ack| ack["pid"] } }
      end
    end

    private

    # Every channel was answered and every process that acknowledged has sent its result.
    def done?(acks, results, heard_on)
      !acks.empty? && acks.keys.all? { |process| results.key?(process) } &&
        @channels.all? { |channel| heard_on[channel] }
    end
  end
end
