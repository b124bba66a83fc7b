# frozen_string_literal: true

# Run by test/capture/extra_memory_test.rb in its own process: ruby -Ilib test/support/memory_probe.rb
# HEAP_MB DIR MODE. Builds a heap of about HEAP_MB MB, starts a thread that keeps writing into its
# strings (as a busy worker writes its heap; it allocates nothing, so what the capture costs is
# what the figures show, not the app's growth), says "ready" on stdout and waits for a line on
# stdin, says "capturing", captures once in MODE into file://DIR/dumps, and prints the result as
# one JSON line (the test measures from outside between the two).
require_relative "probe"

heap_mb, dir, mode = ARGV
HCProbe.configure(dir)
HEAP = HCProbe.heap(heap_mb)
GC.start
busy = true
writer = Thread.new do
  i = 0
  while busy
    HEAP[(i * 7919) % HEAP.size].setbyte(0, 48 + (i % 10)) # a byte here and there: pages all over
    i += 1
  end
end
$stdout.puts "ready #{Process.pid}"
$stdout.flush
$stdin.gets
$stdout.puts "capturing"
$stdout.flush
result = HeapCapture.capture("memory", mode: mode.to_sym)
$stdout.puts JSON.generate(result)
$stdout.flush
busy = false
writer.join
