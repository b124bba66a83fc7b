# frozen_string_literal: true

module HeapCapture
  class Listener
    # The replies waiting to go out on heapcapture_reply (acks, results, refusals), in order.
    # Any thread pushes; only the listener thread, which owns the connection, sends. While
    # PostgreSQL is unreachable they wait, at most LIMIT of them (the oldest dropped first).
    class Outbox
      LIMIT = 1000        # replies kept while the connection is down
      NOTIFY_TIMEOUT = 5  # seconds for one reply to reach the server

      def initialize
        @mutex = Mutex.new
        @replies = []
      end

      def push(reply)
        @mutex.synchronize do
          if @replies.size >= LIMIT
            dropped = @replies.shift
            Log.warn("reply queue full while PostgreSQL is unreachable: dropped a #{dropped['status']} " \
                     "reply to request #{dropped['request_id']}")
          end
          @replies << reply
        end
      end

      # Listener thread only: sends the queued replies; on failure they stay for the next wake.
      def flush(connection)
        return unless connection.connected?

        loop do
          reply = @mutex.synchronize { @replies.first }
          break unless reply

          begin
            connection.notify(Wire::REPLY_CHANNEL, Wire.reply_json(reply), NOTIFY_TIMEOUT)
          rescue ConnectionError => e
            Log.warn("could not send the #{reply['status']} reply to request #{reply['request_id']} " \
                     "yet (#{Util.unprefixed(e.message)}); will retry")
            break
          rescue StandardError => e # a reply that cannot be encoded must not block the ones behind it
            Log.error("dropped the #{reply['status']} reply to request #{reply['request_id']}: #{e.class}: #{e.message}")
          end
          @mutex.synchronize { @replies.shift if @replies.first.equal?(reply) }
        end
      end
    end
  end
end
