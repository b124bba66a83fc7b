# frozen_string_literal: true

module HeapCapture
  class Capture
    # In the app, around a fork capture's dump child: its major GCs held off. Every page either side
    # writes while the child lives is copied, and a major GC frees the old objects the app let go
    # all over the old heap (and their malloc'd bodies): a written page for each. Minor GCs go on;
    # their garbage is young, on pages the app is writing anyway. Ruby 3.4 and later can turn major
    # GCs off alone (GC.config(rgengc_allow_full_mark: false)); before it, the one switch is the
    # whole GC, and holding that costs a busy app more in new pages than it saves in copies
    # (bench/capture_memory: doc/capture.md, "Memory"), so there is no hold there.
    #
    # Held from just before the fork until the child has exited, the app's RSS has grown by
    # BUDGET_SHARE of what it was (an app that lets go of many old objects never grows without
    # bound: its major GCs then run as usual), or the capture ends, whichever comes first. An app
    # that had turned major GCs off itself is left as it was. A process the app forks meanwhile (a
    # Resque job, a worker) gets them back at once (AfterFork): the hold is this process's.
    class GcHold
      AVAILABLE = GC.respond_to?(:config) && GC.config.key?(:rgengc_allow_full_mark)
      BUDGET_SHARE = 0.1 # of the RSS at the start
      INTERVAL = 0.01 # seconds between looks at the child and the RSS

      # In a process forked (through Process._fork, as every Ruby fork is) while a hold was in force.
      module AfterFork
        def _fork
          pid = super
          GcHold.forked if pid.zero?
          pid
        end
      end

      class << self
        attr_accessor :active # the hold in force in this process, or nil

        def forked
          return unless active

          allow_major_gc(true)
          self.active = nil
        end

        def allow_major_gc(allowed) = GC.config(rgengc_allow_full_mark: allowed)

        def install_fork_hook
          Process.singleton_class.prepend(AfterFork) unless Process.singleton_class.include?(AfterFork)
        end
      end

      # Holds off major GCs now (before the fork), where this Ruby can; rss: the app's RSS now (the
      # one the memory guard decided with), which the budget is a share of.
      def initialize(rss)
        @lock = Mutex.new
        @released_because = nil
        @held = AVAILABLE && GC.config[:rgengc_allow_full_mark]
        return unless @held

        self.class.install_fork_hook
        self.class.active = self
        @started = Util.monotonic
        @limit = rss && (rss + (rss * BUDGET_SHARE)).round
        self.class.allow_major_gc(false)
      end

      # From the fork on: released once child.exited? or past the budget.
      def follow(child)
        return unless @held

        @thread = Thread.new do
          Thread.current.name = "heapcapture-gc-hold"
          watch(child)
        end
      end

      # Major GCs back on if still held; idempotent.
      def release(why = "the capture ended")
        @lock.synchronize do
          return if @released_because || !@held

          @released_because = why
          @held_ms = ((Util.monotonic - @started) * 1000).round
          self.class.allow_major_gc(true)
          self.class.active = nil # after: a fork in between still gets them back
        end
      ensure
        @thread&.kill unless Thread.current == @thread
      end

      # For the capture's log line: how long major GCs were held off and why they came back, or nil.
      def description
        @lock.synchronize do
          @released_because && "the app's major GC held off #{@held_ms} ms while the dump child lived " \
                               "(until #{@released_because})"
        end
      end

      private

      def watch(child)
        loop do
          return release("the dump child exited") if child.exited?

          rss = Dump.rss
          if @limit.nil? || rss.nil? || rss > @limit
            return release("the app had grown by #{(BUDGET_SHARE * 100).round}% of its RSS")
          end

          sleep INTERVAL
        end
      rescue StandardError => e # never raised into the app: its major GCs back on, as without a hold
        release("the hold failed: #{e.message}")
      end
    end
  end
end
