# frozen_string_literal: true

# Run by test/capture/memory_mode_test.rb in its own process: ruby -Ilib test/support/mode_probe.rb DIR
# [LIMIT_FROM_SETTING]. Reads commands on stdin, one per line, and answers each with one JSON line:
#   build MB      builds a heap of about MB MB; answers {"rss": bytes}
#   capture [N]   captures once (mode auto) into file://DIR/dumps, with memory_limit N when given
#                 (no cgroup could be made); answers the result
#   quit
require_relative "probe"

HCProbe.configure(ARGV[0])
heap = []
$stdout.sync = true
$stdout.puts JSON.generate("ready" => Process.pid)
while (line = $stdin.gets)
  command, arg = line.split
  case command
  when "build"
    heap.concat(HCProbe.heap(arg))
    GC.start
    $stdout.puts JSON.generate("rss" => HeapCapture::Dump.rss)
  when "capture"
    settings = arg ? { memory_limit: Integer(arg) } : {}
    result = HeapCapture.capture("mode", **settings)
    File.unlink(result["location"]) if result["location"]
    $stdout.puts JSON.generate(result.except("url"))
  when "quit" then break
  end
end
