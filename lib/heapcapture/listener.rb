# frozen_string_literal: true

require "json"

module HeapCapture
  # One armed listener in this process: its own PostgreSQL connection, LISTENing on the dyno's
  # channel from its own thread (HeapCapture::Listener::Connection#run, in C, waits without the
  # GVL). Each notification is acknowledged at once; the capture runs in a thread of its own so
  # the listener keeps receiving, and notifications that arrive meanwhile are coalesced into it
  # (their senders get its result too). Replies are queued and sent by the listener thread, the
  # only one that touches the connection.
  class Listener
    APPLICATION_NAME = "heapcapture"
    OUTBOX_LIMIT = 1000     # replies kept while the connection is down
    NOTIFY_TIMEOUT = 5      # seconds for one reply to reach the server
    STOP_TIMEOUT = 1        # seconds HeapCapture.stop waits for the thread to end

    # The capture seam: a callable taking the payload String and returning the result Hash.
    DEFAULT_CAPTURE_HOOK = ->(payload) { HeapCapture.capture(payload) }

    class << self
      attr_writer :capture_hook

      def capture_hook
        @capture_hook || DEFAULT_CAPTURE_HOOK
      end

      def reset_capture_hook!
        @capture_hook = nil
      end
    end

    attr_reader :dyno, :channel, :pid, :thread, :captures, :coalesced
    attr_accessor :on_result

    def initialize(database_url:, dyno:, channel:, on_result: nil)
      @database_url = database_url
      @dyno = dyno
      @channel = channel
      @on_result = on_result
      @pid = Process.pid
      @mutex = Mutex.new
      @outbox = []
      @current = nil # the capture under way: { payload:, waiters: [[request_id, channel], ...] }
      @captures = 0
      @coalesced = 0
    end

    def start
      @connection = Connection.new(@database_url, @channel, APPLICATION_NAME, true)
      @thread = @connection.run(method(:handle))
      @thread.name = "heapcapture-listener" if @thread.respond_to?(:name=)
      @thread.report_on_exception = false
      self
    end

    # Waits (bounded) until the first LISTEN is done, so a signal sent right after arming is heard.
    def wait_until_listening(timeout)
      deadline = Util.monotonic + timeout
      sleep 0.005 until connected? || !alive? || Util.monotonic > deadline
      connected?
    end

    def alive?
      !@abandoned && @pid == Process.pid && @thread&.alive? ? true : false
    end

    def connected?
      alive? && @connection.connected?
    end

    def capturing?
      @mutex.synchronize { !@current.nil? }
    end

    def backend_pid
      alive? ? @connection.backend_pid : nil
    end

    # Ends the thread (which closes the connection); returns at once when it is already gone.
    def stop
      return if @abandoned || @pid != Process.pid

      @connection&.stop
      return unless @thread

      @thread.kill unless @thread.join(STOP_TIMEOUT)
      @thread.join(STOP_TIMEOUT)
    end

    # Without the database password (error trackers and consoles show inspect).
    def inspect
      "#<#{self.class} #{Redact.url(@database_url.to_s)} dyno=#{dyno.inspect} channel=#{channel.inspect} " \
        "pid=#{pid} captures=#{captures} coalesced=#{coalesced}>"
    end

    # In a forked child: the thread does not exist here and the connection is the parent's.
    def abandon
      @abandoned = true
      @connection&.abandon
    end

    private

    # Runs in the listener thread with the GVL, after each wait (notes may be empty).
    def handle(notes)
      notes.each { |channel, request_id, payload| receive(channel, request_id, payload) }
      flush_outbox
    end

    def receive(channel, request_id, payload)
      enqueue({ "status" => "ack", "dyno" => dyno, "pid" => Process.pid, "request_id" => request_id,
                "channel" => channel })
      job = @mutex.synchronize do
        if @current
          @current[:waiters] << [request_id, channel]
          @coalesced += 1
          Log.info("coalesced a notification on #{channel} from backend #{request_id} " \
                   "(#{payload.bytesize} bytes) into the capture under way")
          nil
        else
          @current = { payload: payload, waiters: [[request_id, channel]] }
          @captures += 1
          Log.info("notification on #{channel} from backend #{request_id} (#{payload.bytesize} bytes): capturing")
          @current
        end
      end
      start_capture(job) if job
    end

    # A capture that cannot start (no thread to be had) is an error reply, not a job that never
    # ends: every later notification would be coalesced into it and go unanswered.
    def start_capture(job)
      Thread.new { run_capture(job) }.tap do |t|
        t.name = "heapcapture-capture"
        t.report_on_exception = false
      end
    rescue StandardError => e
      waiters = @mutex.synchronize do
        @current = nil if @current.equal?(job)
        job[:waiters].uniq
      end
      error = "could not start the capture: #{e.class}: #{e.message}"
      Log.error("#{error}; replied to #{waiters.size} request(s)")
      result = { "status" => "error", "dyno" => dyno, "pid" => Process.pid, "payload" => job[:payload], "error" => error }
      waiters.each { |request_id, channel| enqueue(result.merge("request_id" => request_id, "channel" => channel)) }
      call_block(result)
    end

    def run_capture(job)
      result = call_hook(job[:payload])
      result["dyno"] ||= dyno
      result["pid"] ||= Process.pid
      result["payload"] ||= job[:payload]
      waiters = @mutex.synchronize do
        @current = nil
        job[:waiters].uniq
      end
      result["request_id"] ||= waiters.first&.first
      waiters.each { |request_id, channel| enqueue(result.merge("request_id" => request_id, "channel" => channel)) }
      @connection.wake
      # The capture logged its own outcome (an error once, with its message); this says who heard it.
      Log.info("capture #{describe(result)}; replied to #{waiters.size} request(s)")
      call_block(result)
    rescue Exception => e # rubocop:disable Lint/RescueException -- a background thread must not die silently
      @mutex.synchronize { @current = nil if @current.equal?(job) }
      Log.error("the capture thread failed: #{e.class}: #{e.message}")
      raise unless e.is_a?(StandardError)
    end

    # A capture that raised, or answered with something else than a result, has logged nothing:
    # its error is logged here.
    def call_hook(payload)
      result = self.class.capture_hook.call(payload)
      return result.transform_keys(&:to_s) if result.is_a?(Hash)

      hook_failed("the capture returned #{result.class}, not a result Hash")
    rescue StandardError, ScriptError => e
      hook_failed("#{e.class}: #{e.message}")
    end

    def hook_failed(error)
      Log.error("capture failed: #{error}")
      { "status" => "error", "error" => error }
    end

    def call_block(result)
      @on_result&.call(result)
    rescue StandardError => e
      Log.error("the block given to HeapCapture.exclusive raised #{e.class}: #{e.message}")
    end

    # The capture logged its error already: the listener's line does not repeat it.
    def describe(result)
      result["status"] == "ok" ? Report.outcome(result) : "failed (the error is logged above)"
    end

    def enqueue(reply)
      @mutex.synchronize do
        if @outbox.size >= OUTBOX_LIMIT
          dropped = @outbox.shift
          Log.warn("reply queue full while PostgreSQL is unreachable: dropped a #{dropped['status']} " \
                   "reply to request #{dropped['request_id']}")
        end
        @outbox << reply
      end
    end

    # Listener thread only: sends queued replies; on failure they stay queued for the next wake.
    def flush_outbox
      return unless @connection.connected?

      loop do
        reply = @mutex.synchronize { @outbox.first }
        break unless reply

        begin
          @connection.notify(Wire::REPLY_CHANNEL, Wire.reply_json(reply), NOTIFY_TIMEOUT)
        rescue ConnectionError => e
          Log.warn("could not send the #{reply['status']} reply to request #{reply['request_id']} " \
                   "yet (#{Util.unprefixed(e.message)}); will retry")
          break
        rescue StandardError => e # a reply that cannot be encoded must not block the ones behind it
          Log.error("dropped the #{reply['status']} reply to request #{reply['request_id']}: #{e.class}: #{e.message}")
        end
        @mutex.synchronize { @outbox.shift if @outbox.first.equal?(reply) }
      end
    end
  end
end
