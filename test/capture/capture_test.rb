# frozen_string_literal: true

require "test_helper"
require "etc"
require "json"
require "zlib"
require "tmpdir"
require_relative "../support/bounded_command"

# HeapCapture.capture into a file:// destination: real forks, real dumps, no S3 needed.
class CaptureTest < HCTest::TestCase
  KEY_TIME = /\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ/

  def setup
    @tmpdir = Dir.mktmpdir("hc-capture-tmp-")
    @dest = Dir.mktmpdir("hc-capture-dest-")
    @saved_env = ENV.to_h.slice("HEAPCAPTURE_DYNO", "DYNO")
    ENV["HEAPCAPTURE_DYNO"] = "web.1"
    HeapCapture.configure do |c|
      c.tmpdir = @tmpdir
      c.destination = "file://#{@dest}"
      c.logger = Logger.new(File::NULL)
    end
  end

  def teardown
    ObjectSpace.trace_object_allocations_stop
    @saved_env.each { |k, v| ENV[k] = v }
    ENV.delete("HEAPCAPTURE_DYNO") unless @saved_env.key?("HEAPCAPTURE_DYNO")
    FileUtils.rm_rf([@tmpdir, @dest])
  end

  %i[fork inline].each do |mode|
    %i[gzip none].each do |compression|
      define_method("test_#{mode}_mode_#{compression}_stores_the_whole_dump_named_by_the_key_rule") do
        check_capture(mode, compression)
      end
    end
  end

  # GC is off in the app only around the fork (so no new sweep starts for the child to finish), and
  # as the app had it after: on when it was on, off when it was off.
  def test_gc_is_as_the_app_left_it_after_a_fork_capture
    assert_equal "ok", HeapCapture.capture(mode: :fork)["status"]
    refute GC.disable, "GC was on again after the capture"
    assert_equal "ok", HeapCapture.capture(mode: :fork)["status"]
    assert GC.enable, "GC was left off, as the app had it"
  ensure
    GC.enable
  end

  def test_sheap_reads_the_gzip_dump_directly_and_heapy_the_plain_one
    require "sheap"
    require "heapy"
    GC.start
    ObjectSpace.trace_object_allocations_start
    line = __LINE__ + 1
    kept = Array.new(20) { |i| "analysed-#{i}" }
    gz = HeapCapture.capture(compression: :gzip)
    plain = HeapCapture.capture(compression: :none)
    ObjectSpace.trace_object_allocations_stop

    found = Sheap::Heap.new(gz["location"]).filter { |o| o["file"] == __FILE__ && o["line"] == line }
    assert_operator found.length, :>=, 20
    out, = capture_io { Heapy::Analyzer.new(plain["location"]).drill_down("all", 1_000_000) }
    assert_includes out, "#{__FILE__}:#{line}"
    kept.clear
  end

  def test_with_no_destination_dumps_go_to_tmpdir_heapcapture
    HeapCapture.config.destination = nil
    result = HeapCapture.capture(compression: :none)
    assert_equal "ok", result["status"], result["error"]
    assert_equal File.join(@tmpdir, "heapcapture"), File.dirname(result["location"])
    assert File.file?(result["location"])
  end

  def test_fork_mode_runs_no_fork_hooks_and_no_at_exit_handlers_in_the_child
    marker = File.join(@dest, "hooks-ran")
    active = true
    hook = Module.new do
      define_method(:_fork) do
        File.write(marker, "fork hook ran in #{Process.pid}\n", mode: "a") if active
        super()
      end
    end
    Process.singleton_class.prepend(hook)
    parent = Process.pid
    at_exit { File.write(marker, "at_exit ran in #{Process.pid}\n", mode: "a") if active && Process.pid != parent }

    result = HeapCapture.capture(mode: :fork)

    assert_equal "ok", result["status"], result["error"]
    refute File.exist?(marker), -> { File.read(marker) }
    assert_equal Process.singleton_class, HeapCapture::Capture.vm_fork.owner
  ensure
    active = false
  end

  # An app that runs niced itself keeps its lead: the child's priority is counted from the app's.
  def test_the_dump_child_of_a_niced_app_runs_below_it
    script = <<~RUBY
      require "heapcapture"
      Process.setpriority(Process::PRIO_PROCESS, 0, 5)
      child = HeapCapture::Dump.fork_start(ARGV[0], true, HeapCapture::Capture.vm_fork)
      dump = child.wait
      File.unlink(dump["path"])
      print child.stages["nice"]
      child.close
    RUBY
    out, err, status = HCTest::BoundedCommand.run({}, RbConfig.ruby, "-I#{File.join(HCTest::ROOT, 'lib')}", "-e", script,
                                                  @tmpdir, timeout: 60)
    assert status.success?, err
    assert_operator Integer(out), :>, 5, "the child of an app at nice 5"
  end

  # The internal Dump API: wait gives what a capture result is made of, stages (for the
  # benchmarks) where the child's time went, and nothing before the child ended.
  def test_a_dump_child_reports_its_result_and_apart_its_stages
    rss = File.read("/proc/self/status")[/^VmRSS:\s+(\d+) kB/, 1].to_i * 1024
    child = HeapCapture::Dump.fork_start(@tmpdir, true, HeapCapture::Capture.vm_fork)
    dump = child.wait
    assert_equal %w[bytes dump_ns path pause_ns raw_bytes summary_error summary_json], dump.keys.sort
    stages = child.stages
    assert_equal %w[dump_cpu_ns dump_waits dump_wall_ns finish_ns gzip_cpu_ns nice summary_cpu_ns warm_cpu_ns
                    warm_faults warm_mappings warm_pages warm_wall_ns],
                 stages.keys.sort
    stages.each_value { |ns| assert_kind_of Integer, ns }
    # the design: the child runs at a lower CPU priority than the app (a higher nice), whatever the app's
    app_nice = Process.getpriority(Process::PRIO_PROCESS, 0)
    assert_operator stages["nice"], :>, app_nice if app_nice < 19
    assert_operator stages["dump_cpu_ns"], :>, 0
    # The page warmer ran beside dump_all and read resident pages only (its counting is checked in
    # test/c/test_dump_page_warm.c): no more than the app had resident at the fork, and some when
    # it was done before dump_all was (else the stop may have come before its first page).
    assert_operator stages["warm_pages"] * Etc.sysconf(Etc::SC_PAGESIZE), :<=, rss + (64 << 20)
    if stages["warm_wall_ns"] < stages["dump_wall_ns"] / 2
      assert_operator stages["warm_pages"], :>, 0
      assert_operator stages["warm_mappings"], :>, 0
    end
    assert_nil dump["summary_json"], "the child only dumps unless asked to summarize (an encrypted capture)"
    assert_equal 0, stages["summary_cpu_ns"]
    assert_operator stages["dump_wall_ns"], :<=, dump["dump_ns"]
  ensure
    child&.close
  end

  def test_a_second_capture_while_one_runs_gets_an_error_result
    HeapCapture::Capture::LOCK.lock
    result = HeapCapture.capture("second")
    assert_equal "error", result["status"]
    assert_equal "second", result["payload"]
    assert_match(/a capture is already running in this process \(pid #{Process.pid}\)/, result["error"])
  ensure
    HeapCapture::Capture::LOCK.unlock
  end

  def test_bad_settings_raise_before_anything_is_tried
    error = assert_raises(HeapCapture::ConfigurationError) { HeapCapture.capture(tmpdir: "/nonexistent/hc") }
    assert_match(%r{tmpdir "/nonexistent/hc" is not a directory; set tmpdir \(HEAPCAPTURE_TMPDIR\)}, error.message)

    file = File.join(@tmpdir, "plain-file")
    File.write(file, "")
    error = assert_raises(HeapCapture::ConfigurationError) { HeapCapture.capture(tmpdir: file) }
    assert_match(/is not a directory/, error.message)

    error = assert_raises(HeapCapture::ConfigurationError) { HeapCapture.capture(destination: "ftp://x/") }
    assert_match(%r{neither s3://bucket/prefix/ nor file:///dir}, error.message)
    error = assert_raises(HeapCapture::ConfigurationError) { HeapCapture.capture(destination: "file://host/dir") }
    assert_match(%r{must be file:///absolute/dir}, error.message)
    assert_raises(HeapCapture::ConfigurationError) { HeapCapture.capture(mode: :later) }
    assert_raises(ArgumentError) { HeapCapture.capture(colour: :blue) }
    assert_empty Dir.children(@dest)
    assert_equal ["plain-file"], Dir.children(@tmpdir)
  end

  def test_a_store_that_fails_leaves_no_tempfile_and_no_partial_file
    # The destination is a path under a regular file: mkdir fails after the dump was made.
    blocker = File.join(@dest, "not-a-dir")
    File.write(blocker, "")
    result = HeapCapture.capture(destination: "file://#{blocker}/dumps")
    assert_equal "error", result["status"]
    assert_match(%r{storing the dump in #{blocker}/dumps: .*(Not a directory|File exists)}, result["error"])
    assert_empty Dir.children(@tmpdir), "the tempfile must be removed"
    assert_equal ["not-a-dir"], Dir.children(@dest)
  end

  private

  def check_capture(mode, compression)
    GC.start # dump_all writes garbage too: keep earlier tests' garbage out of this dump
    ObjectSpace.trace_object_allocations_start
    marker_line = __LINE__ + 1
    kept = Array.new(50) { |i| "heapcapture-test-marker-#{i}" }

    result = HeapCapture.capture({ "run" => 1 }, mode: mode, compression: compression)

    assert_equal "ok", result["status"], result["error"]
    suffix = compression == :gzip ? "-heap.ndjson.gz" : "-heap.ndjson"
    name = File.basename(result["location"])
    assert_match(/\A#{KEY_TIME}-web\.1-pid#{Process.pid}#{Regexp.escape(suffix)}\z/, name)
    assert_equal @dest, File.dirname(result["location"])
    assert_equal 0o600, File.stat(result["location"]).mode & 0o777
    assert_empty Dir.children(@tmpdir), "the 0600 tempfile must be gone"

    assert_equal "web.1", result["dyno"]
    assert_equal Process.pid, result["pid"]
    assert_equal({ "run" => 1 }, result["payload"])
    assert_nil result["url"]
    assert_nil result["error"]
    assert_equal File.size(result["location"]), result["bytes"]
    %w[pause_ms dump_ms upload_ms].each { |k| assert_kind_of Float, result[k], k }
    assert_operator result["dump_ms"], :>=, result["pause_ms"]

    text = read_dump(result["location"], compression)
    assert_equal result["raw_bytes"], text.bytesize
    gzip_tool_accepts(result["location"]) if compression == :gzip
    assert_operator result["bytes"], :<, result["raw_bytes"] / 3 if compression == :gzip
    counts = count_records(text, __FILE__, marker_line)
    assert_operator counts[:lines], :>, 1000
    assert_operator counts[:roots], :>, 0, "no ROOT record in the dump"
    assert_operator counts[:mine], :>=, 50, "the dump should hold the strings allocated at #{__FILE__}:#{marker_line}"
    kept.clear
  end

  # Parses every line (each must be a JSON object) without keeping them: the next test's dump
  # would otherwise carry them all.
  def count_records(text, file, line)
    counts = { lines: 0, roots: 0, mine: 0 }
    text.each_line do |json|
      record = JSON.parse(json)
      counts[:lines] += 1
      counts[:roots] += 1 if record["type"] == "ROOT"
      counts[:mine] += 1 if record["type"] == "STRING" && record["file"] == file && record["line"] == line
    end
    counts
  end

  # gzip(1), which users run before heapy: header, deflate stream, CRC-32 and length all check out.
  def gzip_tool_accepts(path)
    out = IO.popen(["gzip", "-t", "-v", path], err: %i[child out], &:read)
    assert $?.success?, "gzip -t rejects the dump: #{out}"
    assert_match(/OK/, out)
  end

  # Zlib::GzipReader reads one member; nothing may follow it (one gzip member, per the rules).
  def read_dump(path, compression)
    return File.binread(path) if compression == :none

    File.open(path, "rb") do |file|
      gz = Zlib::GzipReader.new(file)
      text = gz.read
      assert_nil gz.unused, "more than one gzip member"
      gz.finish
      text
    end
  end
end
