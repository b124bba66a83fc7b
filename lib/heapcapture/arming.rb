# frozen_string_literal: true

module HeapCapture
  ARM_TIMEOUT = 2 # seconds exclusive waits at most for its first connection attempt (it never fails on it)

  # The process's one listener and allocation tracing: HeapCapture.exclusive, .status and .stop
  # (lib/heapcapture.rb) land here. The state is per process: a forked child drops what it
  # inherited (ForkHook below) and arms its own.
  module Arming
    @arm_mutex = Mutex.new

    class << self
      # See HeapCapture.exclusive.
      def exclusive(process_type: "web", dynos: 1, **settings, &block)
        selection = Dyno.select(process_type, dynos)
        @arm_mutex.synchronize do
          forget_inherited_listener
          url, plan = armable(selection, settings)
          return false unless url

          if @listener&.alive? && @listener.channel == selection.channel
            @listener.on_result = block if block
            return true
          end

          @listener&.stop
          @autocapture&.stop
          Tracing.arm(HeapCapture.config.trace_allocations)
          @listener = Listener.new(database_url: url, dyno: selection.dyno, channel: selection.channel,
                                   on_result: block).start
          @autocapture = start_autocapture(plan, @listener)
          stop_quietly_at_exit
          connected = @listener.wait_until_listening(ARM_TIMEOUT)
          Log.info("armed in #{selection.dyno} (pid #{Process.pid}): listening on #{selection.channel}" \
                   "#{connected ? '' : ' once PostgreSQL answers (not connected yet; retrying in the background)'}" \
                   ", allocation tracing #{Tracing.description}#{automatic_text(plan)}")
          warn_unsigned unless HeapCapture.config.signal_key
          true
        end
      end

      # See HeapCapture.status.
      def status
        forget_inherited_listener
        listener = @listener
        armed = listener&.alive? || false
        {
          armed: armed,
          dyno: armed ? listener.dyno : Dyno.current.first,
          channel: armed ? listener.channel : nil,
          connected: armed && listener.connected?,
          backend_pid: armed ? listener.backend_pid : nil,
          capturing: armed && listener.capturing?,
          captures: listener&.captures || 0,
          coalesced: listener&.coalesced || 0,
          tracing: Tracing.description,
          automatic: armed ? automatic_status : nil,
          pid: Process.pid
        }
      end

      # See HeapCapture.stop.
      def stop
        @arm_mutex.synchronize do
          forget_inherited_listener
          listener = @listener
          @listener = nil
          @autocapture&.stop
          @autocapture = nil
          return false unless listener&.alive?

          listener.stop
          Log.info("stopped listening on #{listener.channel}")
          true
        end
      end

      # Process._fork hook, in the child: the listener thread does not exist here and its connection
      # is the parent's. Dropped without a word on the parent's socket; exclusive arms a new one.
      def after_fork_in_child
        @arm_mutex = Mutex.new # a lock held at fork time by a thread that does not exist here
        forget_inherited_listener
        @autocapture = nil # its thread is the parent's
        Tracing.after_fork_in_child
      end

      private

      # Applies the settings; returns [the database URL, the automatic captures' plan or nil] when
      # this process is selected and every setting can work, else nil, having logged why not.
      def armable(selection, settings)
        config = HeapCapture.config
        config.apply(settings) unless settings.empty?
        unless selection.selected?
          Log.info(selection.reason)
          return nil
        end
        url = config.database_url!
        Capture.check!(config)
        [url, Autocapture.plan!(config)]
      rescue ConfigurationError => e
        Log.error("not armed in #{selection.dyno || Dyno.label} (pid #{Process.pid}): #{Util.unprefixed(e.message)}")
        nil
      end

      def warn_unsigned
        Log.warn("no signal_key (HEAPCAPTURE_SIGNAL_KEY): anyone who can connect to this database can make this " \
                 "process capture, and read the replies on #{Wire::REPLY_CHANNEL} (sizes, summaries, where the dump " \
                 "is stored; never a URL to it); set a key of #{SignalAuth::KEY_MIN}+ bytes here and where you signal " \
                 "so that only signed signals act (doc/security.md)")
      end

      def automatic_status = @autocapture&.alive? ? @autocapture.status : nil

      def start_autocapture(plan, listener)
        return nil unless plan

        autocapture = Autocapture.new(plan) { |reason| listener.trigger(reason) }.start
        listener.after_capture = -> { autocapture.captured }
        autocapture
      end

      # ", captures every 1 h, and when RSS stays above 800 MB (3 readings 30 s apart)"
      def automatic_text(plan)
        return "" unless plan

        parts = []
        parts << "every #{plan.every.round(3)} s" if plan.every
        parts << "when RSS stays above #{plan.rss_above_text} (#{plan.strikes} readings #{plan.interval} s apart)" \
          if plan.rss_above
        parts << "when RSS grows #{Size.megabytes(plan.growth)}" if plan.growth
        ", captures #{parts.join(', and ')}"
      end

      # A process that exits normally ends the listener itself, saying nothing: the warning about a
      # listener thread that ended without HeapCapture.stop is for threads killed while the process
      # goes on. (In a forked child the listener is not its own, and Listener#stop does nothing.)
      def stop_quietly_at_exit
        @stop_quietly_at_exit ||= at_exit { @listener&.stop }
      end

      def forget_inherited_listener
        return unless @listener && @listener.pid != Process.pid

        @listener.abandon
        @listener = nil
      end
    end
  end

  # Ruby 3.1+ calls Process._fork for every fork made from Ruby (fork, Process.fork, IO.popen("-")).
  module ForkHook
    def _fork
      pid = super
      Arming.after_fork_in_child if pid.zero?
      pid
    end
  end
  ::Process.singleton_class.prepend(ForkHook) if ::Process.respond_to?(:_fork)
end
