# frozen_string_literal: true

module HeapCapture
  class Listener
    # Whether a notification may start a capture, decided in the listener thread before anything
    # starts: none less than min_interval after the last capture ended (a storm of signals must not
    # become a stream of captures). Refusals share one log line a minute (throttle).
    class Gate
      attr_reader :throttle

      def initialize
        @mutex = Mutex.new
        @last_ended = nil # monotonic
        @throttle = LogThrottle.new
      end

      def capture_ended = @mutex.synchronize { @last_ended = Util.monotonic }

      # nil when a capture may start now, else [error, extra reply keys]: when the next is possible.
      def too_soon
        interval = HeapCapture.config.min_interval.to_f
        wait = @mutex.synchronize { @last_ended ? @last_ended + interval - Util.monotonic : 0 }
        return nil unless interval.positive? && wait.positive?

        next_at = (Time.now.utc + wait).strftime("%Y-%m-%dT%H:%M:%SZ")
        ["a capture ended #{(interval - wait).round} s ago and captures are at least #{interval.round} s apart " \
         "(min_interval, HEAPCAPTURE_MIN_INTERVAL): the next is possible in #{wait.ceil} s, at #{next_at}; " \
         "nothing was started", { "retry_in" => wait.ceil }]
      end
    end
  end
end
