# frozen_string_literal: true

module HeapCapture
  # HeapCapture.signal: one NOTIFY per selected dyno, on a short-lived connection of its own; with
  # wait:, the replies to this request (see Wire) until every process that acknowledged has sent
  # its result, or the time is up.
  class Signaller
    APPLICATION_NAME = "heapcapture signal"
    CONNECT_TIMEOUT = 10
    NOTIFY_TIMEOUT = 10
    SETTLE = 0.3 # seconds to wait for late acknowledgements once every known process replied

    attr_reader :channels, :wait, :results

    def initialize(payload, process_type:, dynos:, wait:, trace_for: nil)
      @trace_for = trace_for && Tracing.window_seconds!(trace_for)
      @payload = Wire.signal_text(payload, @trace_for)
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
      @channels.each { |channel| connection.notify(channel, @payload, NOTIFY_TIMEOUT) }
      Log.info("signalled #{@channels.join(', ')} (request #{request_id}, #{@payload.bytesize} bytes" \
               "#{@trace_for ? ", full allocation tracing for #{@trace_for} s first" : ''})")
      @wait ? collect(connection, request_id) : @channels
    ensure
      connection&.close
    end

    private

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
          results[process] = reply unless reply["status"] == "ack"
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
