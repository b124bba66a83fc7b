# frozen_string_literal: true

require "objspace"

module HeapCapture
  # Allocation tracing in the armed process (its side of the fork only): the default that
  # trace_allocations sets when arming, and the full-tracing windows that
  # HeapCapture.signal(trace_for:) opens, one at a time.
  # - :sampled: heapcapture's own tracer (rb_tracer.c) notes a sample of allocations in short
  #   windows that a sampler thread opens every SAMPLE_EVERY seconds (when it gets the GVL); the
  #   dump child adds their sites to the dump.
  # - :full: ObjectSpace's tracer, every allocation, from arming on.
  # ObjectSpace's tracer counts its starts and stops, so a window's start and stop leave the default
  # as it was.
  module Tracing
    WINDOW_MAX = 86_400 # seconds: a window longer than a day is refused
    SAMPLE_EVERY = 0.005 # seconds between two sampling windows, at the most
    @mutex = Mutex.new
    @default = :off
    @window = nil # { seconds:, ends_at: (monotonic) } while one is open
    @sampler = nil # the sampler thread of this process

    class << self
      attr_reader :default

      # At arming: turns the default on once (a second exclusive does not start it twice; a forked
      # child gets a sampler thread of its own).
      def arm(mode)
        @mutex.synchronize do
          case mode
          when :full
            return if @default == :full

            ObjectSpace.trace_object_allocations_start
            @default = :full
          when :sampled
            start_sampler unless @default == :full
          end
        end
      end

      # Opens a full-tracing window of seconds; false when one is open already.
      def open_window(seconds)
        @mutex.synchronize do
          return false if @window

          ObjectSpace.trace_object_allocations_start
          # ObjectSpace's tracer gives every object its site now: no sampled windows meanwhile (on
          # Ruby < 3.3 each stored sample makes a hidden Array, which it would give the app's line).
          Tracer.stop if @default == :sampled
          @window = { seconds: seconds, ends_at: Util.monotonic + seconds,
                      allocated: GC.stat(:total_allocated_objects) }
          true
        end
      end

      # After the window's capture. Once the tracer is off, ObjectSpace keeps what it recorded and
      # no longer hears frees: an object made later in a recorded object's slot would show that
      # object's site (in allocation_sourcefile and in dump_all). So the records go too, unless
      # the default keeps the tracer on (it still hears the frees then).
      def close_window
        @mutex.synchronize do
          return unless @window

          ObjectSpace.trace_object_allocations_stop
          ObjectSpace.trace_object_allocations_clear unless @default == :full
          if @default == :sampled
            Tracer.start
            # the window's allocations were not the sampled tracer's to note: not in its rate
            @allocated_at_start += GC.stat(:total_allocated_objects) - @window[:allocated]
          end
          @window = nil
        end
      end

      # Stops the sampled default: the sampler thread, the tracer's windows and its samples (tests,
      # and a process that no longer wants sites: a later dump, whose result says "off", carries no
      # estimated site of this run). ObjectSpace's tracer, if on, is left as it is.
      def stop_sampled
        @mutex.synchronize do
          @sampler&.kill
          @sampler = nil
          Tracer.stop
          Tracer.clear
          @default = :off if @default == :sampled
        end
      end

      # Seconds left in the open window, or nil.
      def window_left
        window = @window
        window && [window[:ends_at] - Util.monotonic, 0].max
      end

      # What a result and status say: "full", "off", "sampled (1 in ~2400 allocations)", or
      # "full (a 600 s window)".
      def description
        window = @window
        return "full (a #{format_seconds(window[:seconds])} s window)" if window
        return "sampled (#{sample_rate})" if @default == :sampled

        @default.to_s
      end

      # The sampled tracer's figures (Tracer.stats, counted since the process loaded heapcapture),
      # with "allocations" and "noted" since this default started, trace_for windows left out (the
      # tracer is off in them): after a stop and a new arming, the rate is this run's, not the notes
      # of every run over this one's allocations.
      def sampled_stats
        return nil unless @default == :sampled

        stats = Tracer.stats
        stats.merge("allocations" => GC.stat(:total_allocated_objects) - @allocated_at_start,
                    "noted" => stats["noted"] - @noted_at_start)
      end

      # In a forked child: no thread of this process closes the window it inherited, so it is
      # closed here; the default stays (the child's tracer is the parent's, copied).
      def after_fork_in_child
        @mutex = Mutex.new
        close_window
        @sampler = nil # the thread is the parent's; arming here starts one
      end

      # A window's length: a number of seconds from 0 (exclusive) to WINDOW_MAX, or ArgumentError.
      def window_seconds!(value)
        seconds = (value.is_a?(Numeric) || value.is_a?(String) ? Float(value, exception: false) : nil) || 0.0
        return seconds if seconds.finite? && seconds.positive? && seconds <= WINDOW_MAX

        raise ArgumentError, Util.prefixed("trace_for must be a number of seconds above 0 and at most " \
                                           "#{WINDOW_MAX} (a day), got #{value.inspect}")
      end

      private

      def format_seconds(seconds) = seconds == seconds.round ? seconds.round.to_s : seconds.to_s

      def start_sampler
        return if @sampler&.alive?

        unless @default == :sampled
          @allocated_at_start = GC.stat(:total_allocated_objects)
          @noted_at_start = Tracer.stats["noted"]
          Tracer.start
          @default = :sampled
        end
        @sampler = Thread.new do
          loop do
            Tracer.open_window
            sleep SAMPLE_EVERY
          end
        end
        @sampler.name = "heapcapture-sampler"
        @sampler.report_on_exception = false
      end

      def sample_rate
        stats = sampled_stats
        noted = stats["noted"]
        noted.positive? ? "1 in ~#{(stats['allocations'].to_f / noted).round} allocations" : "no sample yet"
      end
    end
  end
end
