# frozen_string_literal: true

# Run by test/capture/inline_stream_test.rb in its own process: ruby -Ilib test/support/inline_probe.rb
# HEAP_MB DIR. Builds a heap of about HEAP_MB MB, then, with allocation tracing off:
# 1. an inline capture (gzip, file://DIR/dumps) while nothing else runs, with the peak RSS it
#    caused (VmHWM, reset just before through /proc/self/clear_refs) and the RSS before;
# 2. ObjectSpace.dump_all to a file in DIR, for the lines to compare with and its time (the quiet
#    in-process dump);
# 3. an inline capture while a thread spins on the CPU.
# Prints one JSON line.
require_relative "probe"
require "zlib"

heap_mb, dir = ARGV
HCProbe.configure(dir)

def status_kb(field) = File.read("/proc/self/status")[/#{field}:\s+(\d+)/, 1].to_i
def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

# Our dump's lines against dump_all's (in a method: the two copies go when it returns). Lines only
# one side has are compared again without the objects' flags, which a GC between the two dumps
# changes (inline mode leaves the GC on; on Ruby 3.3 for ~16% of the lines).
FLAGS = /, "flags":\{[^}]*\}/
def compare(ours_path, plain)
  ours = Zlib::GzipReader.open(ours_path) { |gz| gz.each_line.map { |l| l.force_encoding(Encoding::BINARY) } }
  theirs = File.foreach(plain, mode: "rb").to_a
  ours_set = ours.to_h { |l| [l, true] }
  theirs_set = theirs.to_h { |l| [l, true] }
  only_ours = ours.reject { |l| theirs_set[l] }.map { |l| l.sub(FLAGS, "") }
  only_theirs = theirs.reject { |l| ours_set[l] }.map { |l| l.sub(FLAGS, "") }
  only_ours_set = only_ours.to_h { |l| [l, true] }
  only_theirs_set = only_theirs.to_h { |l| [l, true] }
  { "lines" => ours.size, "lines_only_ours" => only_ours.count { |l| !only_theirs_set[l] },
    "lines_only_dump_all" => only_theirs.count { |l| !only_ours_set[l] },
    "heap_lines_identical" => heap_lines_identical(ours, theirs_set) }
end

# The probe's own first 1000 strings, line for line as dump_all wrote them (found in one pass).
def heap_lines_identical(ours, theirs_set)
  wanted = HEAP.first(1000).to_h do |s|
    [%({"address":"0x#{ObjectSpace.dump(s)[/"address":"0x(\h+)"/, 1]}").b, true]
  end
  found = ours.select { |l| (comma = l.index(",")) && wanted[l[0, comma]] }
  found.size == wanted.size && found.all? { |l| theirs_set[l] }
end

HEAP = HCProbe.heap(heap_mb)
GC.start
report = { "objects" => HEAP.size }

# 1. quiet inline capture, its peak RSS
hwm_reset = begin
  File.write("/proc/self/clear_refs", "5")
  true
rescue SystemCallError
  false
end
report["rss_before_kb"] = status_kb("VmRSS")
t0 = now
quiet = HeapCapture.capture("quiet", mode: :inline)
report["quiet_s"] = now - t0
report["peak_kb"] = hwm_reset ? status_kb("VmHWM") : nil
report["quiet"] = quiet

# 2. dump_all's own lines, and how long it takes to a file (after a GC, as before this change: the
# comparison leaves the objects' flags out, which the GC changes)
GC.start
plain = File.join(dir, "plain.ndjson")
t0 = now
File.open(plain, "wb") { |f| ObjectSpace.dump_all(output: f) }
report["dump_all_s"] = now - t0
report.merge!(compare(quiet["location"], plain))
File.unlink(plain)

# 3. the same capture with a CPU-bound thread
GC.start
spinning = true
spinner = Thread.new do
  x = 0
  x += 1 while spinning
end
sleep 0.1
t0 = now
busy = HeapCapture.capture("busy", mode: :inline)
report["busy_s"] = now - t0
spinning = false
spinner.join
report["busy"] = busy
puts JSON.generate(report)
