# frozen_string_literal: true

require "objspace"

module HeapCapture
  # Allocation tracing in the armed process (its side of the fork only): the default that
  # trace_allocations sets when arming (:full, ObjectSpace's tracer on from then on, or :off), and
  # the full-tracing windows that HeapCapture.signal(trace_for:) opens, one at a time. ObjectSpace's
  # tracer counts its starts and stops, so a window's start and stop leave the default as it was.
  module Tracing
    WINDOW_MAX = 86_400 # seconds: a window longer than a day is refused
    @mutex = Mutex.new
    @default = :off
    @window = nil # { seconds:, ends_at: (monotonic) } while one is open

    class << self
      attr_reader :default

      # At arming: turns the default on once (a second exclusive does not start it twice).
      def arm(mode)
        @mutex.synchronize do
          return if @default == :full || mode != :full

          ObjectSpace.trace_object_allocations_start
          @default = :full
        end
      end

      # Opens a full-tracing window of seconds; false when one is open already.
      def open_window(seconds)
        @mutex.synchronize do
          return false if @window

          ObjectSpace.trace_object_allocations_start
          @window = { seconds: seconds, ends_at: Util.monotonic + seconds }
          true
        end
      end

      def close_window
        @mutex.synchronize do
          return unless @window

          ObjectSpace.trace_object_allocations_stop
          @window = nil
        end
      end

      # Seconds left in the open window, or nil.
      def window_left
        window = @window
        window && [window[:ends_at] - Util.monotonic, 0].max
      end

      # What a result and status say: "full", "off", or "full (a 600 s window)".
      def description
        window = @window
        return "full (a #{format_seconds(window[:seconds])} s window)" if window

        @default.to_s
      end

      # In a forked child: no thread of this process closes the window it inherited, so it is
      # closed here; the default stays (the child's tracer is the parent's, copied).
      def after_fork_in_child
        @mutex = Mutex.new
        close_window
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
    end
  end
end
