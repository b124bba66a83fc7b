# frozen_string_literal: true

# Run by test/capture/capture_pause_test.rb in its own process (so the test process stays small):
#   ruby -Ilib test/support/pause_probe.rb HEAP_MB TMPDIR DEST_DIR
# Builds a heap of about HEAP_MB MB, keeps a thread ticking every 2 ms, captures once in fork mode
# and once inline, and prints one JSON line: each capture's result and the longest gap the
# ticking thread saw while it ran.
require_relative "probe"

heap_mb, tmpdir, dest = ARGV
HCProbe.configure(tmpdir, dest: dest)
$heap = HCProbe.heap(heap_mb)
rss_mb = File.read("/proc/self/status")[/VmRSS:\s+(\d+)/, 1].to_i / 1024.0

longest = 0.0
lock = Mutex.new
ticker = Thread.new do
  loop do
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC, :float_millisecond)
    sleep 0.002
    gap = Process.clock_gettime(Process::CLOCK_MONOTONIC, :float_millisecond) - t0
    lock.synchronize { longest = gap if gap > longest }
  end
end

measure = lambda do |mode|
  sleep 0.2
  lock.synchronize { longest = 0.0 }
  gc = GC.stat.slice(:count, :major_gc_count, :time)
  result = HeapCapture.capture(mode: mode)
  sleep 0.05 # let the ticker report the gap that ended when the capture returned
  gap = lock.synchronize { longest }
  gc_after = GC.stat.slice(:count, :major_gc_count, :time)
  File.unlink(result["location"]) if result["location"]
  # The GCs the app ran meanwhile (inline mode leaves the GC on): they stop every thread too.
  result.merge("longest_tick_gap_ms" => gap.round(1), "gc_runs" => gc_after[:count] - gc[:count],
               "major_gc_runs" => gc_after[:major_gc_count] - gc[:major_gc_count],
               "gc_ms" => gc_after[:time] - gc[:time])
end

report = { "rss_mb" => rss_mb.round, "objects" => $heap.size }
report["fork"] = measure.call(:fork)
report["inline"] = measure.call(:inline)
ticker.kill
puts JSON.generate(report)
