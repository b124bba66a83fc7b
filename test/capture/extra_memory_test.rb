# frozen_string_literal: true

require "test_helper"
require "json"
require "open3"
require "tmpdir"
require_relative "../support/proc_memory"

# extra_memory_bytes against the same figure measured from outside: the Pss of the app plus its
# dump child (the pages shared between them counted once), less the app's Pss before, sampled by
# this test every 10 ms while a 300 MB process with a thread that keeps writing its heap captures.
class ExtraMemoryTest < HCTest::TestCase
  ROOT = HCTest::ROOT
  MB = 1024 * 1024

  def test_extra_memory_bytes_of_a_fork_capture_matches_the_outside_figure
    check_mode("fork")
  end

  def test_extra_memory_bytes_of_an_inline_capture_matches_the_outside_figure
    check_mode("inline")
  end

  private

  def check_mode(mode)
    Dir.mktmpdir("hc-extra-") do |dir|
      result, outside, analysis_seen = run_probe(dir, mode)
      assert_equal "ok", result["status"], result["error"]
      assert_equal mode, result["mode"]
      inside = result["extra_memory_bytes"]
      puts "\n#{mode} capture of a busy 300 MB process: extra_memory_bytes #{inside / MB} MB, measured from outside " \
           "#{outside / MB} MB (#{(inside.to_f / outside).round(2)}x)"
      assert_kind_of Integer, inside
      if mode == "inline" && HeapCapture::Dump::INLINE_STOPS_THE_APP
        # Ruby 3.4 and later: no 48 MB IO buffer (dump_all writes through stdio, rb_dump.h), only the
        # pipe's, the FILE's and the pump's few MB: under the estimate, and close to the outside figure.
        assert_operator outside, :<, HeapCapture::MemoryGuard::INLINE_BYTES, "within the memory guard's estimate"
        assert_in_delta outside, inside, 4 * MB, "within 4 MB of the outside figure"
      else
        assert_operator outside, :>, 8 * MB, "the capture cost something to measure"
        assert_in_delta 1.0, inside.to_f / outside, 0.25, "within 25% of the outside figure"
      end
      # The retention analysis after the dump runs in a process of its own, whose memory the summary
      # gives apart (retention_peak_bytes, its VmHWM read as it ends): its peak seen from outside is
      # no larger, but for what its last few allocations touch after that reading (0.1-0.3 MB seen).
      analysis = result["summary"]["retention_peak_bytes"]
      assert_operator analysis, :>, 0, result["summary"]["retention"]
      assert_operator analysis_seen, :>, 0, "the analysis process was seen"
      assert_operator analysis_seen, :<=, analysis + MB, "the analysis's peak seen from outside"
    end
  end

  # Starts the probe, takes its Pss once it is ready, lets it capture while sampling it and its
  # children, and returns [result, peak extra seen from outside, the retention analysis's peak RSS seen].
  def run_probe(dir, mode)
    cmd = [RbConfig.ruby, "-I#{File.join(ROOT, 'lib')}", File.join(ROOT, "test/support/memory_probe.rb"), "300", dir, mode]
    Open3.popen3(*cmd) do |stdin, stdout, stderr, wait|
      err = Thread.new { stderr.read }
      ready = Timeout.timeout(120) { stdout.gets } or flunk("the probe ended before it was ready: #{err.value}")
      pid = Integer(ready[/\Aready (\d+)/, 1])
      sleep 0.5 # the writer thread at work
      stdin.puts "go"
      stdin.flush
      Timeout.timeout(60) { stdout.gets } # "capturing": the base from here, as the capture's own
      base = pss(pid)
      peak = 0
      analysis_peak = 0
      analysis = ->(child) { HCTest::ProcMemory.retention_analysis?(child) }
      line = Thread.new { stdout.gets }
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 180
      while line.alive? && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
        # nil across the fork or the child's exit; the retention analysis is counted apart
        total = HCTest::ProcMemory.pss_with_children(pid, leave_out: analysis)
        peak = [peak, total - base].max if total
        HCTest::ProcMemory.children(pid).select(&analysis).each do |child|
          analysis_peak = [analysis_peak, HCTest::ProcMemory.peak_rss(child)].max
        end
        sleep 0.01
      end
      assert wait.value.success?, "the memory probe failed: #{err.value}"
      [JSON.parse(line.value), peak, analysis_peak]
    end
  end

  def pss(pid) = HCTest::ProcMemory.pss(pid)
end
