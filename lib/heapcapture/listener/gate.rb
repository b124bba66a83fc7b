# frozen_string_literal: true

module HeapCapture
  class Listener
    # Whether a notification may act, decided in the listener thread before anything starts: with a
    # signal_key, only a signed one (Signing); and none starts a capture less than min_interval
    # after the last one ended (a storm of signals must not become a stream of captures).
    class Gate
      def initialize
        @mutex = Mutex.new
        @last_ended = nil # monotonic
        @nonces = nil # the signed requests seen (made with the first)
      end

      # nil when request (a Wire::Request on channel) may act, else [error, extra reply keys].
      # capturing: one would join the capture under way (no min_interval then).
      def refusal(request, channel, capturing:)
        key = HeapCapture.config.signal_key
        why = key && Signing.refusal(request, channel, key, @nonces ||= SignalAuth::NonceCache.new(Signing::NONCES))
        return ["refused: #{why}; nothing was started", {}] if why

        capturing ? nil : too_soon
      end

      def capture_ended = @mutex.synchronize { @last_ended = Util.monotonic }

      # nil when a capture may start now, else [error, extra reply keys]: when the next is possible.
      def too_soon
        interval = HeapCapture.config.min_interval
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
