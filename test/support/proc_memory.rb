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
    def pss_with_children(pid)
      kids = children(pid)
      total = pss(pid) + kids.sum { |child| pss(child) }
      children(pid) == kids ? total : nil
    end
  end
end
