# frozen_string_literal: true

module HeapCapture
  # Which mode a capture can afford, decided in the app before anything starts: the memory limit and
  # what is in use (the memory_limit setting against this process's RSS, else the cgroup's limit and
  # use, Cgroup) against what each mode is estimated to cost, with MARGIN.
  # - fork: the pages copied while the child lives, which a busy app (one that allocates and
  #   replaces old objects while the child dumps) makes far more of than a quiet one: FORK_SHARE of
  #   RSS, the busy figure measured on Ruby 3.1 and 3.4 (doc/figures.md), or more if a fork capture
  #   in this process has measured more (learn).
  # - inline: its buffers, whatever the heap (INLINE_BYTES; from 3.4 on dump_all takes no IO buffer
  #   of ours, rb_dump.h, and a few MB are left).
  # mode :auto takes fork when it fits, else inline; :fork and :inline are held to their estimate
  # too. When none fits, the capture is refused with the figures: it never starts a capture the
  # estimate says will go over the limit.
  module MemoryGuard
    FORK_SHARE = 0.4
    INLINE_BYTES = (Dump::INLINE_STOPS_THE_APP ? 16 : 64) * 1024 * 1024
    # What a decision for inline mode adds where it stops the app for the whole dump (rb_dump.h).
    INLINE_NOTE = Dump::INLINE_STOPS_THE_APP ? "; on Ruby 3.4 and later the app waits for the whole inline dump" : ""
    MARGIN = 1.25
    INLINE_NEED = (INLINE_BYTES * MARGIN).round # what an inline capture must find free
    # The retention analysis at capture time (heap_graph.h), in a process of its own
    # (Capture::RetentionProcess): ~50 bytes an object and 8 a reference at its peak, plus that
    # process's Ruby and the reader's buffers (doc/figures.md). The dump is not counted before it
    # (a fork capture's child only dumps): half its ndjson bytes stands for the graph (an object
    # line is 100+ bytes, a reference 17). With no limit known, it may take at most this share of
    # the machine's available memory (MemAvailable; of the process's RSS where that cannot be read).
    RETENTION_BASE_BYTES = 26 * 1024 * 1024 # its Ruby, the reader's pieces and the summary feed's blocks
    RETENTION_UNBOUNDED_SHARE = 0.5
    Decision = Struct.new(:mode, :reason, :limit, keyword_init: true)
    @fork_share = FORK_SHARE

    class << self
      attr_reader :fork_share

      # Decision(mode:, reason:, limit:); mode nil when no mode fits (reason then gives the figures).
      def decide(config, rss, fork_possible: Process.respond_to?(:_fork))
        budget = budget(config, rss)
        modes = config.mode == :auto ? [(:fork if fork_possible), :inline].compact : [config.mode]
        return Decision.new(mode: modes.first, reason: unbounded_reason(config), limit: nil) unless budget && rss

        free = budget.limit - budget.used
        needs = modes.to_h { |mode| [mode, need(mode, rss)] }
        chosen = modes.find { |mode| needs[mode] <= free }
        return Decision.new(mode: nil, reason: refusal(needs, free, budget), limit: budget.limit) unless chosen

        Decision.new(mode: chosen, reason: reason(config, chosen, needs, free, budget), limit: budget.limit)
      end

      # After a fork capture: its measured extra memory raises the share estimated for the next.
      def learn(extra_bytes, rss)
        return unless extra_bytes && rss&.positive?

        @fork_share = [@fork_share, extra_bytes.to_f / rss].max
      end

      def reset! = @fork_share = FORK_SHARE

      # What the retention analysis of a dump will take, from its uncompressed size.
      def retention_need(raw_bytes) = (raw_bytes.to_i / 2) + RETENTION_BASE_BYTES

      # Whether the app's process can take the retention analysis now: [true, nil] or [false, why].
      def retention_fits(config, need)
        rss = Dump.rss
        budget = budget(config, rss)
        wanted = (need * MARGIN).round
        if budget
          free = budget.limit - budget.used
          return [true, nil] if wanted <= free

          [false, "it needs ~#{Size.megabytes(wanted)}, #{Size.megabytes([free, 0].max)} are free of the " \
                  "#{Size.megabytes(budget.limit)} limit (#{budget.source})"]
        else
          available = available_memory
          allowed = ((available || rss.to_i) * RETENTION_UNBOUNDED_SHARE).round
          return [true, nil] if wanted <= allowed

          of_what = if available
                      "the machine's #{Size.megabytes(available)} available (no memory limit is known)"
                    else
                      "this process's #{Size.megabytes(rss.to_i)} RSS (no memory limit is known)"
                    end
          [false, "it needs ~#{Size.megabytes(wanted)}, more than #{(RETENTION_UNBOUNDED_SHARE * 100).round}% of #{of_what}"]
        end
      end

      # The kernel's estimate of the memory that can be had without swapping (MemAvailable), or nil.
      def available_memory
        File.foreach("/proc/meminfo") { |line| return Integer(line[/\d+/], 10) * 1024 if line.start_with?("MemAvailable:") }
        nil
      rescue SystemCallError, ArgumentError, TypeError
        nil
      end

      # The memory limit this process is held to, as a Cgroup::Memory (limit, source), or nil.
      def limit(config) = budget(config, Dump.rss)

      private

      def budget(config, rss)
        if config.memory_limit
          Cgroup::Memory.new(limit: config.memory_limit, used: rss.to_i,
                             source: "memory_limit setting, this process's RSS")
        else
          Cgroup.memory
        end
      end

      def need(mode, rss) = mode == :fork ? (rss * @fork_share * MARGIN).round : INLINE_NEED

      def unbounded_reason(config)
        return "mode #{config.mode} (set)" unless config.mode == :auto

        "auto: no memory limit known (no cgroup limit, no memory_limit setting)"
      end

      def reason(config, chosen, needs, free, budget)
        figures = "#{Size.megabytes(free)} free of #{Size.megabytes(budget.limit)} (#{budget.source})"
        note = chosen == :inline ? INLINE_NOTE : ""
        if config.mode != :auto
          "mode #{chosen} (set): needs ~#{Size.megabytes(needs[chosen])}, #{figures}#{note}"
        elsif chosen == :fork
          "auto: fork needs ~#{Size.megabytes(needs[:fork])}, #{figures}"
        else
          fork_part = needs[:fork] ? "fork would need ~#{Size.megabytes(needs[:fork])}" : "this Ruby cannot fork"
          "auto: inline, as #{fork_part} and #{figures}; inline needs ~#{Size.megabytes(needs[:inline])}#{note}"
        end
      end

      def refusal(needs, free, budget)
        wanted = needs.map { |mode, bytes| "#{mode} needs ~#{Size.megabytes(bytes)}" }.join(" and ")
        "not enough memory for a capture: #{wanted} (each with a #{((MARGIN - 1) * 100).round}% margin), but " \
          "#{Size.megabytes([free, 0].max)} are free of the #{Size.megabytes(budget.limit)} limit " \
          "(#{budget.source}, #{Size.megabytes(budget.used)} in use); " \
          "nothing was started. Capture when the process is smaller, or raise the limit (memory_limit, " \
          "HEAPCAPTURE_MEMORY_LIMIT)"
      end
    end
  end
end
