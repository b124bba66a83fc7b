# frozen_string_literal: true

require "test_helper"
require "json"
require "tmpdir"
require "zlib"
require_relative "../support/child_helpers"

# How a capture fails: full or read-only filesystems (real tmpfs mounts: the suite runs as root,
# as CI does), a dump child killed mid-dump, an exception in the child or in the capturing thread.
# Every path: a clear message, no tempfile left, no zombie.
class CaptureFailureTest < HCTest::TestCase
  include HCTest::ChildHelpers

  def setup
    @tmpdir = Dir.mktmpdir("hc-fail-tmp-")
    @dest = Dir.mktmpdir("hc-fail-dest-")
    HeapCapture.configure do |c|
      c.tmpdir = @tmpdir
      c.destination = "file://#{@dest}"
      c.logger = Logger.new(File::NULL)
    end
  end

  def teardown
    stop_capture_threads
  ensure
    @ballast = nil
    FileUtils.rm_rf([@tmpdir, @dest])
  end

  def test_a_tmpdir_without_room_for_the_estimate_is_refused_with_needed_and_free_space
    with_tmpfs("1m") do |small|
      result = HeapCapture.capture(tmpdir: small)
      assert_equal "error", result["status"]
      assert_match(/not enough free space for the heap dump in tmpdir #{small}: it needs about [\d.]+ MB .*only [\d.]+ MB are free; set tmpdir \(HEAPCAPTURE_TMPDIR\)/, # rubocop:disable Layout/LineLength
                   result["error"])
      assert_empty Dir.children(small)
    end
    assert_empty Dir.children(@dest)
  end

  def test_a_read_only_tmpdir_is_a_configuration_error
    with_tmpfs("1m", read_only: true) do |read_only|
      error = assert_raises(HeapCapture::ConfigurationError) { HeapCapture.capture(tmpdir: read_only) }
      assert_match(/tmpdir "#{read_only}" is not writable by this process .*HEAPCAPTURE_TMPDIR/, error.message)
    end
  end

  def test_a_destination_that_fills_up_leaves_neither_tempfile_nor_partial_copy
    with_tmpfs("1m") do |full|
      # A plain dump is several MB; another filesystem means a copy, which runs out of room.
      result = HeapCapture.capture(destination: "file://#{full}", compression: :none)
      assert_equal "error", result["status"]
      assert_match(/storing the dump in #{full}: No space left on device/, result["error"])
      assert_empty Dir.children(full)
    end
    assert_empty Dir.children(@tmpdir)
  end

  def test_a_dump_child_killed_mid_dump_is_an_error_result_and_is_reaped
    build_ballast
    capture, child = start_capture(mode: :fork)
    Process.kill(:KILL, child)
    assert capture.join(30), "capture did not return after its child was killed"
    result = capture.value

    assert_equal "error", result["status"]
    assert_match(/dump child killed by SIGKILL/, result["error"])
    assert_reaped(child)
    assert_empty Dir.children(@tmpdir)
    assert_empty Dir.children(@dest)
  end

  def test_raising_into_the_capturing_thread_kills_and_reaps_the_child_and_removes_the_tempfile
    build_ballast
    capture, child = start_capture(mode: :fork)
    capture.raise(RuntimeError, "the app is shutting down")
    error = assert_raises(RuntimeError) { capture.join(30) }
    assert_equal "the app is shutting down", error.message
    refute capture.alive?, "capture did not stop when its thread was interrupted"
    assert_reaped(child)
    assert_empty Dir.children(@tmpdir)
    refute HeapCapture::Capture::LOCK.locked?, "the capture lock must be released"
  end

  def test_raising_into_an_inline_capture_while_it_compresses_removes_the_tempfile
    build_ballast
    capture = capture_thread(mode: :inline)
    # This thread runs again only once dump_all has finished and gzip runs without the GVL.
    HCTest::Services.wait_until("the inline dump to reach its tempfile", timeout: 20, interval: 0.001) do
      !Dir.children(@tmpdir).empty? && File.size(File.join(@tmpdir, Dir.children(@tmpdir).first)).positive?
    rescue Errno::ENOENT
      false
    end
    capture.raise(RuntimeError, "stop compressing")
    if HeapCapture::Dump::INLINE_STOPS_THE_APP
      # From Ruby 3.4 on, this thread runs again only once dump_all has returned, and the raise lands
      # wherever the capture then is, or after its end: raised or not, no tempfile is left, and
      # what is stored is never a part.
      begin
        capture.join(30)
      rescue RuntimeError => e
        assert_equal "stop compressing", e.message
      end
      assert_empty Dir.children(@tmpdir)
      # A raise after the end finds the dump stored, and its summary beside it (JSON, not gzip).
      Dir.children(@dest).each do |name|
        path = File.join(@dest, name)
        next assert_kind_of(Hash, JSON.parse(File.read(path)), name) if name.end_with?(".summary.json")

        text = Zlib::GzipReader.open(path, &:read) # a part has no gzip trailer: raises
        assert text.end_with?("}\n"), "#{name} ends with a whole line"
      end
    else
      error = assert_raises(RuntimeError) { capture.join(30) }
      assert_equal "stop compressing", error.message
      assert_empty Dir.children(@tmpdir)
      assert_empty Dir.children(@dest)
    end
  end

  def test_the_dump_child_dies_with_its_parent
    script = <<~RUBY
      require "heapcapture"
      require "logger"
      HeapCapture.configure { |c| c.tmpdir = #{@tmpdir.dump}; c.destination = "file://#{@dest}"; c.logger = Logger.new(File::NULL) }
      $ballast = Array.new(1_000_000) { |i| "ballast string \#{i}" }
      $stdout.puts "ready"
      $stdout.flush
      HeapCapture.capture(mode: :fork)
      sleep 60
    RUBY
    IO.popen([RbConfig.ruby, "-I#{File.expand_path('../../lib', __dir__)}", "-e", script]) do |io|
      assert_equal "ready\n", io.gets
      child = HCTest::Services.wait_until("the probe's dump child to start", timeout: 20, interval: 0.005) do
        children_of(io.pid).first
      end
      Process.kill(:KILL, io.pid)
      Process.wait(io.pid)
      # Reparented to init, it may linger as a zombie there; what matters is that it stopped.
      assert HCTest::Services.wait_until("the orphaned dump child #{child} to die", timeout: 10) {
        !File.exist?("/proc/#{child}") || zombie?(child)
      }
    end
    # Nobody was left to remove the tempfile; the next capture does.
    orphans = Dir.children(@tmpdir)
    assert_equal 1, orphans.size, orphans.inspect
    assert_match(/\Aheapcapture-\d+-\h{16}\.ndjson\.gz\z/, orphans.first)
    # what a retention analysis of that process left: its output and its error file
    dead = orphans.first[/\Aheapcapture-\d+-/]
    %w[.retention.json .retention.json.err].each { |ext| File.write(File.join(@tmpdir, "#{dead}#{'0' * 16}#{ext}"), "") }
    assert_equal "ok", HeapCapture.capture["status"]
    assert_empty Dir.children(@tmpdir)
  end

  def test_an_exception_inside_the_dump_child_comes_back_as_its_message
    with_failing_dump_all do
      result = HeapCapture.capture(mode: :fork)
      assert_equal "error", result["status"]
      assert_match(/ObjectSpace\.dump_all: IOError: injected failure \(dump child exited with status 1\)/, result["error"])
      assert_empty Dir.children(@tmpdir)
      assert_empty children_of(Process.pid).select { |pid| zombie?(pid) }
    end
  end

  def test_an_exception_in_an_inline_dump_is_an_error_result_and_removes_the_tempfile
    with_failing_dump_all do
      result = HeapCapture.capture(mode: :inline)
      assert_equal "error", result["status"]
      assert_equal "injected failure", result["error"]
      assert_empty Dir.children(@tmpdir)
    end
  end

  private

  # Enough objects that dumping them takes a noticeable moment (about 30 MB of ndjson).
  def build_ballast
    @ballast = Array.new(300_000) { |i| "ballast string #{i}" }
  end

  def with_failing_dump_all
    failing = Module.new do
      def dump_all(**)
        raise IOError, "injected failure"
      end
    end
    ObjectSpace.singleton_class.prepend(failing)
    yield
  ensure
    # A prepended module cannot be removed: make its method step aside instead.
    failing.send(:define_method, :dump_all) { |**kw| super(**kw) }
  end

  def with_tmpfs(size, read_only: false)
    dir = Dir.mktmpdir("hc-tmpfs-")
    options = "size=#{size},mode=0700#{read_only ? ',ro' : ''}"
    out = IO.popen(["mount", "-t", "tmpfs", "-o", options, "tmpfs", dir], err: %i[child out], &:read)
    flunk "these tests mount a small tmpfs and need root (CI runs as root): mount said: #{out}" unless $?.success?
    begin
      yield dir
    ensure
      system("umount", dir)
    end
  ensure
    Dir.rmdir(dir) if dir && Dir.exist?(dir)
  end
end
