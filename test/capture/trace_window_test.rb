# frozen_string_literal: true

require "test_helper"
require "json"
require "zlib"
require "tmpdir"
require_relative "../support/listener_helpers"

# HeapCapture.signal(trace_for:): the armed process turns on ObjectSpace's full tracer for the
# window, captures when it ends, and goes back to its default tracing; one window at a time.
class TraceWindowTest < HCTest::TestCase
  include HCTest::ListenerHelpers

  def setup
    super
    @tmpdir = Dir.mktmpdir("hc-trace-window-")
    @dumps = File.join(@tmpdir, "dumps")
    HeapCapture.configure do |c|
      c.tmpdir = @tmpdir
      c.destination = "file://#{@dumps}"
    end
    HCTest.stop_allocation_tracing # an earlier test's armed default: this one starts from none
  end

  def teardown
    HeapCapture::Tracing.close_window
    HCTest.stop_allocation_tracing
    super
    FileUtils.rm_rf(@tmpdir)
  end

  def test_objects_allocated_in_the_window_carry_their_site_and_tracing_goes_back_to_off
    arm("web.1", trace_allocations: :off)
    assert_equal "off", HeapCapture.status[:tracing]
    before = "before the window #{rand}"
    signal = Thread.new { HeapCapture.signal("window", trace_for: 2, wait: 60) }
    wait_for("the window to open") { HeapCapture.status[:tracing].start_with?("full") }
    assert_equal "full (a 2 s window)", HeapCapture.status[:tracing]

    kept = []
    line = __LINE__ + 2
    allocator = Thread.new do
      loop { kept << "in the window #{kept.size}"; sleep 0.001 } # rubocop:disable Style/Semicolon
    end
    results = signal.value
    allocator.kill.join

    assert_equal ["ok"], results.map { |r| r["status"] }, "#{results.inspect}\n#{log_text}"
    assert_equal "full (a 2 s window)", results.first["tracing"]
    assert_equal "off", HeapCapture.status[:tracing], "back to the default once the window has captured"
    assert_nil ObjectSpace.allocation_sourcefile(+"after the window"), "ObjectSpace's tracer is off again"

    records = dump_records(results.first["location"])
    in_window = records.select { |r| r["type"] == "STRING" && r["value"].to_s.match?(/\Ain the window \d+\z/) }
    assert_operator in_window.size, :>, 50, "the allocating thread ran during the window"
    sites = in_window.map { |r| [r["file"], r["line"]] }.tally
    assert_equal({ [__FILE__, line] => in_window.size }, sites, "every object allocated in the window carries its site")
    untraced = records.find { |r| r["value"] == before }
    refute_nil untraced, "the string made before the window is in the dump"
    assert_nil untraced["file"], "an object allocated before the window carries no site"
    assert_match(/full allocation tracing for 2\.0 s, then a capture/, log_text)
  end

  def test_a_second_window_while_one_is_open_is_refused_with_an_error_reply
    arm("web.1", trace_allocations: :off)
    first = Thread.new { HeapCapture.signal("first", trace_for: 2, wait: 60) }
    wait_for("the window to open") { HeapCapture.status[:tracing].start_with?("full") }
    second = HeapCapture.signal("second", trace_for: 5, wait: 10)
    assert_equal ["error"], second.map { |r| r["status"] }, second.inspect
    assert_match(/a tracing window is already open in this process \(\d+ s left\); this request for another was refused/,
                 second.first["error"])
    assert_equal "second", second.first["payload"]
    assert_equal ["ok"], first.value.map { |r| r["status"] }, "the open window still captures"
    assert_equal "off", HeapCapture.status[:tracing]
  end

  # A trace request sent by hand with a length no process can use is an error reply naming why.
  def test_a_trace_request_with_a_bad_length_is_an_error_reply
    arm("web.1", trace_allocations: :off)
    watcher = PG.connect(@pg.url)
    watcher.exec("LISTEN heapcapture_reply")
    watcher.exec_params("SELECT pg_notify($1, $2)", ["heapcapture_web_1", '{"heapcapture":"trace","trace_for":0}'])
    error = nil
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 15
    until error || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      watcher.wait_for_notify(1) do |_channel, _pid, text|
        reply = JSON.parse(text)
        error = reply if reply["status"] == "error"
      end
    end
    refute_nil error, "an error reply; log:\n#{log_text}"
    assert_match(/trace_for must be a number of seconds above 0 and at most 86400 \(a day\), got 0/, error["error"])
    assert_equal "off", HeapCapture.status[:tracing], "no window was opened"
  ensure
    watcher&.close
  end

  def test_a_bad_trace_for_is_an_argument_error_before_anything_is_sent
    [0, -5, "soon", 86_401].each do |bad|
      assert_raises(ArgumentError, bad.inspect) { HeapCapture.signal("go", trace_for: bad) }
    end
  end

  private

  def dump_records(path)
    Zlib::GzipReader.open(path) { |gz| gz.each_line.map { |l| JSON.parse(l) } }
  end
end
