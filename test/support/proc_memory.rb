# frozen_string_literal: true

module HCTest
  # A process's memory as /proc tells it, for figures measured from outside (tests and benchmarks).
  module ProcMemory
    module_function

    def pss(pid)
      File.read("/proc/#{pid}/smaps_rollup")[/^Pss:\s+(\d+) kB/, 1].to_i * 1024
    rescue SystemCallError
      0
    end

    def children(pid)
      Dir.glob("/proc/#{pid}/task/*/children").flat_map { |f| File.read(f).split.map(&:to_i) }
    rescue SystemCallError
      []
    end

    # The Pss of pid and its children (the pages they share counted once), or nil when a child came
    # or went during the reading: a fork or an exit between two readings counts the shared pages in
    # full once and in half once (half the RSS too much), as heapcapture's own sampler knows.
    # Children for which leave_out(child) is true are not counted.
    def pss_with_children(pid, leave_out: ->(_) { false })
      kids = children(pid)
      total = pss(pid) + kids.sum { |child| leave_out.call(child) ? 0 : pss(child) }
      children(pid) == kids ? total : nil
    end

    # Whether pid is a capture's retention analysis (its own process: exec'd retention_main.rb).
    def retention_analysis?(pid)
      File.read("/proc/#{pid}/cmdline").include?("retention_main.rb")
    rescue SystemCallError
      false
    end

    # The peak RSS so far (VmHWM) of pid, 0 once it is gone.
    def peak_rss(pid)
      File.read("/proc/#{pid}/status")[/^VmHWM:\s+(\d+) kB/, 1].to_i * 1024
    rescue SystemCallError
      0
    end
  end
end
