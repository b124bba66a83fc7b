# frozen_string_literal: true

require "json"
require_relative "listener/capture_hook"

module HeapCapture
  # One armed listener in this process: its own PostgreSQL connection, LISTENing on the dyno's
  # channel from its own thread (HeapCapture::Listener::Connection#run, in C, waits without the
  # GVL). Each notification is acknowledged at once; the capture runs in a thread of its own so
  # the listener keeps receiving, and notifications that arrive meanwhile are coalesced into it
  # (their senders get its result too). Replies are queued and sent by the listener thread, the
  # only one that touches the connection.
  class Listener
    APPLICATION_NAME = "heapcapture"
    STOP_TIMEOUT = 1 # seconds HeapCapture.stop waits for the thread to end

    extend CaptureHook::Seam
    include CaptureHook

    attr_reader :dyno, :channel, :pid, :thread, :captures, :coalesced
    attr_accessor :on_result
    attr_writer :after_capture # called once each capture has replied (the RSS watch's baseline)

    def initialize(database_url:, dyno:, channel:, on_result: nil)
      @database_url = database_url
      @dyno = dyno
      @channel = channel
      @on_result = on_result
      @pid = Process.pid
      @mutex = Mutex.new
      @outbox = Outbox.new
      @current = nil # the capture under way: { payload:, waiters: [[request_id, channel], ...] }
      @captures = 0
      @coalesced = 0
      @gate = Gate.new
      @refusals = LogThrottle.new # refused requests share one log line a minute
    end

    def start
      @connection = Connection.new(@database_url, @channel, APPLICATION_NAME, true)
      @thread = @connection.run(method(:handle))
      @thread.name = "heapcapture-listener" if @thread.respond_to?(:name=)
      @thread.report_on_exception = false
      self
    end

    # Waits (bounded) until the first LISTEN is done, so a signal sent right after arming is heard;
    # not past the first attempt's failure (a database that refuses: arming returns at once, and
    # the listener retries in the background).
    def wait_until_listening(timeout)
      deadline = Util.monotonic + timeout
      sleep 0.002 until connected? || !alive? || @connection.attempts.positive? || Util.monotonic > deadline
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

      if @window_thread&.alive?
        @window_thread.kill
        Tracing.close_window
      end
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

    # An automatic capture (autocapture.rb): started, or joined to the one under way, as a signal
    # would be; its result is replied on heapcapture_reply (no request id), its payload the reason.
    def trigger(reason)
      capture_for(reason, [nil, channel])
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
      @outbox.flush(@connection)
    end

    def receive(channel, request_id, text)
      @outbox.push({ "status" => "ack", "dyno" => dyno, "pid" => Process.pid, "request_id" => request_id,
                     "channel" => channel })
      request = Wire.parse_request(text)
      waiter = [request_id, channel, request.reply_key]
      error, extra = @gate.refusal(request, channel, capturing: capturing?)
      return refuse(request.payload, waiter, error, throttle: @refusals, extra: extra) if error

      if request.trace_for
        open_window(request.payload, request.trace_for, waiter)
      else
        capture_for(request.payload, waiter)
      end
    end

    # Joins the capture under way, or starts one. after: what to run once that capture has ended.
    def capture_for(payload, waiter, after: nil)
      request_id, channel = waiter
      job = @mutex.synchronize do
        if @current
          @current[:waiters] << waiter
          @current[:after] << after if after
          @coalesced += 1
          Log.info("coalesced #{request_id ? 'a ' : 'an '}#{origin(payload, request_id, channel)} into the capture under way")
          nil
        else
          @current = { payload: payload, waiters: [waiter], after: [after].compact }
          @captures += 1
          Log.info("#{origin(payload, request_id, channel)}: capturing")
          @current
        end
      end
      start_capture(job) if job
    end

    # What asked for a capture, for the log: "notification on heapcapture_web_1 from backend 42
    # (2 bytes)" or "automatic capture (every 1 h)".
    def origin(payload, request_id, channel)
      return "automatic capture (#{payload})" unless request_id

      "notification on #{channel} from backend #{request_id} (#{payload.bytesize} bytes)"
    end

    # A trace request: ObjectSpace's full tracer now, the capture when the window ends, then the
    # default tracing again. One window at a time: a second is refused with an error reply.
    def open_window(payload, trace_for, waiter)
      seconds = Tracing.window_seconds!(trace_for)
      unless Tracing.open_window(seconds)
        return refuse(payload, waiter, "a tracing window is already open in this process (#{Tracing.window_left.to_f.round} s " \
                                       "left); this request for another was refused: send it again once that one " \
                                       "has captured")
      end
      Log.info("notification on #{waiter[1]} from backend #{waiter[0]}: full allocation tracing for " \
               "#{seconds} s, then a capture")
      @window_thread = Thread.new do
        sleep seconds
        capture_for(payload, waiter, after: -> { Tracing.close_window })
      end
      @window_thread.name = "heapcapture-trace-window"
    rescue ArgumentError => e # a trace_for this process cannot use (sent by hand)
      refuse(payload, waiter, Util.unprefixed(e.message))
    rescue ThreadError => e
      Tracing.close_window
      refuse(payload, waiter, "could not start the tracing window: #{e.message}")
    end

    # An error reply to one request that started nothing; logged through throttle when given.
    def refuse(payload, (request_id, channel), error, throttle: nil, extra: {})
      line = "refused the request from backend #{request_id} on #{channel}: #{error}"
      throttle ? throttle.write(:warn, line) : Log.error(line)
      @outbox.push({ "status" => "error", "dyno" => dyno, "pid" => Process.pid, "payload" => payload, "error" => error,
                     "tracing" => Tracing.description, "request_id" => request_id, "channel" => channel }.merge(extra))
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
      finish(job)
      error = "could not start the capture: #{e.class}: #{e.message}"
      Log.error("#{error}; replied to #{waiters.size} request(s)")
      result = { "status" => "error", "dyno" => dyno, "pid" => Process.pid, "payload" => job[:payload], "error" => error }
      push_replies(result, waiters)
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
      finish(job)
      result["request_id"] ||= waiters.first&.first
      push_replies(result, waiters)
      @connection.wake
      # The capture logged its own outcome (an error once, with its message); this says who heard it.
      Log.info("capture #{describe(result)}; replied to #{waiters.size} request(s)")
      @after_capture&.call
      call_block(result)
    rescue Exception => e # rubocop:disable Lint/RescueException -- a background thread must not die silently
      @mutex.synchronize { @current = nil if @current.equal?(job) }
      finish(job)
      Log.error("the capture thread failed: #{e.class}: #{e.message}")
      raise unless e.is_a?(StandardError)
    end

    # The result to each request it answers, as that request may read it (Signing.reply: no URL in the
    # clear; sealed to the request's reply key when it has one).
    def push_replies(result, waiters)
      waiters.each do |request_id, channel, reply_key|
        @outbox.push(Signing.reply(result, reply_key).merge("request_id" => request_id, "channel" => channel))
      end
    end

    # What waited for the job's end (a tracing window's close), once; min_interval counts from here.
    def finish(job)
      @gate.capture_ended
      afters = @mutex.synchronize { job[:after].shift(job[:after].size) }
      afters.each(&:call)
    end

    def call_block(result)
      @on_result&.call(result)
    rescue StandardError => e
      Log.error("the block given to HeapCapture.exclusive raised #{e.class}: #{e.message}")
    end

    # The capture logged its error already: the listener's line does not repeat it.
    def describe(result)
      result["status"] == "ok" ? ResultText.outcome(result) : "failed (the error is logged above)"
    end
  end
end

require_relative "listener/outbox"
require_relative "listener/gate"
