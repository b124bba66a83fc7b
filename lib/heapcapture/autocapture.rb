# frozen_string_literal: true

module HeapCapture
  # Captures without a human, in the armed process: every `every` seconds (with jitter, so that a
  # fleet booted together drifts apart), and when the RSS watch fires: RSS read from /proc every
  # `rss_interval` (Dump.rss, without the GVL), a capture after `rss_strikes` readings in a row
  # above `rss_above`, then none for `rss_backoff`; or when RSS has grown `rss_growth` since the
  # last capture. Each is the listener's normal capture (Listener#trigger): the same result,
  # reply, block and log line, joined by a signal that comes meanwhile. One thread, stopped with the
  # listener; a forked child has none.
  class Autocapture
    JITTER = 0.1 # each period is the setting +/- this share of it
    READINGS_KEPT = 5 # RSS readings status shows

    # The settings resolved for this process: nil when none asks for automatic captures; a
    # ConfigurationError for settings that cannot work (exclusive logs it and does not arm).
    Plan = Struct.new(:every, :rss_above, :rss_above_text, :interval, :strikes, :backoff, :growth, keyword_init: true)

    def self.plan!(config)
      return nil unless config.every || config.rss_above || config.rss_growth

      above, text = rss_threshold!(config)
      Plan.new(every: config.every, rss_above: above, rss_above_text: text, interval: config.rss_interval,
               strikes: config.rss_strikes, backoff: config.rss_backoff, growth: config.rss_growth)
    end

    # [bytes, "800 MB" or "85% of the 1024 MB limit"], or nil without rss_above.
    def self.rss_threshold!(config)
      setting = config.rss_above or return nil
      limit = MemoryGuard.limit(config)
      if setting.is_a?(Float)
        unless limit
          raise ConfigurationError, "rss_above #{(setting * 100).round(1)}% needs a memory limit, and none is known " \
                                    "(no cgroup limit, no memory_limit setting): give rss_above in bytes (\"800MB\")"
        end

        return [(limit.limit * setting).round, "#{(setting * 100).round(1)}% of the #{Size.megabytes(limit.limit)} limit"]
      end
      if limit && setting > limit.limit
        raise ConfigurationError, "rss_above #{Size.megabytes(setting)} is above the memory limit " \
                                  "#{Size.megabytes(limit.limit)} (#{limit.source}): RSS can never reach it"
      end
      [setting, Size.megabytes(setting)]
    end

    attr_reader :plan

    # trigger: called with the reason (a String) to start or join a capture.
    def initialize(plan, &trigger)
      @plan = plan
      @trigger = trigger
      @mutex = Mutex.new
      @wake = ConditionVariable.new
      @readings = []
      @strikes = 0
      @pid = Process.pid
    end

    def start
      now = Util.monotonic
      @next_capture = plan.every && now + jittered(plan.every)
      @next_reading = (plan.rss_above || plan.growth) && now
      @hold_until = nil
      @baseline = Dump.rss
      @thread = Thread.new { run }
      @thread.name = "heapcapture-autocapture"
      @thread.report_on_exception = false
      self
    end

    def stop
      return unless @pid == Process.pid && @thread

      @mutex.synchronize do
        @stopped = true
        @wake.signal
      end
      @thread.join(Listener::STOP_TIMEOUT) || @thread.kill
    end

    def alive? = @pid == Process.pid && @thread&.alive? ? true : false

    # A capture ended (any, automatic or signalled): RSS growth counts from here.
    def captured
      rss = Dump.rss
      @mutex.synchronize { @baseline = rss if rss }
    end

    # For HeapCapture.status: the next periodic capture (seconds from now) and the RSS watch.
    def status
      @mutex.synchronize do
        now = Util.monotonic
        { every: plan.every, next_capture_in: @next_capture && [(@next_capture - now).round(1), 0].max,
          rss_above: plan.rss_above, rss_strikes: "#{@strikes} of #{plan.strikes}", rss_growth: plan.growth,
          rss_readings: @readings.dup, rss_last_reading_ago: @read_at && (now - @read_at).round(1),
          rss_hold_for: @hold_until && [(@hold_until - now).round(1), 0].max }
      end
    end

    private

    def run
      loop do
        @mutex.synchronize do
          wait = [@next_capture, @next_reading].compact.min - Util.monotonic
          @wake.wait(@mutex, wait) if wait.positive? && !@stopped
          return if @stopped
        end
        tick(Util.monotonic)
      end
    rescue StandardError => e # on its own thread: logged, never raised into the app
      Log.error("automatic captures stopped: #{e.class}: #{e.message}")
    end

    def tick(now)
      if @next_capture && now >= @next_capture
        @next_capture = now + jittered(plan.every)
        fire("every #{duration(plan.every)}")
      end
      return unless @next_reading && now >= @next_reading

      @next_reading = now + plan.interval
      rss = reading or return
      reason = @mutex.synchronize { judge(rss, now) }
      fire(reason) if reason
    end

    # This process's RSS, or nil (said in the log once each time it stops being readable; the watch
    # goes on trying).
    def reading
      rss = Dump.rss
      if rss.nil? && !@unreadable
        Log.warn("the RSS watch cannot read this process's RSS (VmRSS in /proc/self/status): no capture on RSS " \
                 "until it can")
      end
      @unreadable = rss.nil?
      rss
    end

    # The reason to capture on this reading, or nil. Called with the mutex held.
    def judge(rss, now)
      @read_at = now
      @baseline ||= rss # RSS could not be read at start: growth counts from the first reading
      @readings = (@readings + [rss]).last(READINGS_KEPT)
      held = @hold_until && now < @hold_until
      if plan.rss_above
        @strikes = rss > plan.rss_above ? @strikes + 1 : 0
        if @strikes >= plan.strikes && !held
          @strikes = 0
          @hold_until = now + plan.backoff
          @baseline = rss
          return "rss #{Size.megabytes(rss)} > #{plan.rss_above_text}, #{plan.strikes} strikes"
        end
      end
      return nil unless plan.growth && @baseline && rss - @baseline >= plan.growth

      grown = "rss grew #{Size.megabytes(rss - @baseline)} since the last capture " \
              "(#{Size.megabytes(@baseline)} to #{Size.megabytes(rss)})"
      @baseline = rss
      grown
    end

    def fire(reason)
      Log.info("automatic capture: #{reason}")
      @trigger.call(reason)
    end

    def jittered(period) = period * (1 + JITTER * (2 * rand - 1))

    def duration(seconds)
      return "#{(seconds / 3600.0).round(2)} h" if seconds >= 3600 && (seconds % 3600).zero?

      seconds >= 60 && (seconds % 60).zero? ? "#{(seconds / 60).round} min" : "#{seconds.round(3)} s"
    end
  end
end
