# frozen_string_literal: true

# Run by test/capture/autocapture_test.rb in its own process: ruby -Ilib test/support/rss_watch_probe.rb.
# A small app for the RSS watch: its RSS is its own, not that of a test process grown to a GB by
# the tests before (where readings moved with the GC giving pages back, and once, on Ruby 3.3, the
# watch saw no growth at all). Reads commands on stdin, one per line; writes JSON lines, each with
# "reply" (the answer to a command) or "capture" (a capture the watch started; the hook only
# records it):
#   rss           this process's RSS once it holds still (two readings 0.3 s apart within 4 MB)
#   arm JSON      HeapCapture.exclusive(**JSON) in dyno web.1 (DATABASE_URL from the environment)
#   grow MB       one block of MB MB, kept resident by a thread writing its pages every 20 ms
#   status        HeapCapture.status[:automatic], the log, and RSS now
#   quit
require "heapcapture"
require "json"
require "logger"
require "stringio"

$stdout.sync = true
OUT = Mutex.new
def say(hash) = OUT.synchronize { $stdout.puts JSON.generate(hash) }
def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

LOG = StringIO.new
LOG_LOCK = Mutex.new
# Logger's device: the listener's threads and the status command share the StringIO.
class LockedLog
  def write(*args) = LOG_LOCK.synchronize { LOG.write(*args) }
  def close; end
end

def settled_rss
  deadline = now + 6
  rss = HeapCapture::Dump.rss
  loop do
    sleep 0.3
    latest = HeapCapture::Dump.rss
    return latest if (latest - rss).abs < 4 * 1024 * 1024 || now > deadline

    rss = latest
  end
end

HeapCapture.configure do |c|
  c.logger = Logger.new(LockedLog.new)
  c.trace_allocations = :off
end
HeapCapture::Listener.capture_hook = lambda do |payload|
  say("capture" => payload, "at" => now)
  { "status" => "ok", "location" => "file:///tmp/rss-watch-probe", "bytes" => 0 }
end
ENV["DYNO"] = "web.1"
GC.start
ballast = nil
say("ready" => Process.pid)
while (line = $stdin.gets)
  command, arg = line.split(" ", 2)
  case command
  when "rss" then say("reply" => settled_rss)
  when "arm"
    settings = JSON.parse(arg, symbolize_names: true)
    armed = HeapCapture.exclusive(**settings)
    deadline = now + 15
    sleep 0.01 until HeapCapture.status[:connected] || !armed || now > deadline
    say("reply" => armed && HeapCapture.status[:connected] ? true : false)
  when "grow"
    ballast = "y" * (Integer(arg) * 1024 * 1024) # above glibc's largest mmap threshold: fresh pages
    Thread.new do
      loop do
        (0...ballast.bytesize).step(4096) { |i| ballast.setbyte(i, 120) }
        sleep 0.02
      end
    end
    say("reply" => HeapCapture::Dump.rss)
  when "status"
    log = LOG_LOCK.synchronize { LOG.string.dup }
    say("reply" => { "automatic" => HeapCapture.status[:automatic], "log" => log, "rss" => HeapCapture::Dump.rss })
  when "quit" then break
  end
end
HeapCapture.stop
