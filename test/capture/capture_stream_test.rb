# frozen_string_literal: true

require "test_helper"
require "json"
require "tmpdir"
require_relative "../support/fault_proxy"
require_relative "../support/child_helpers"

# A fork-mode capture to S3 uploads the dump while the child still writes it: parts go up as they
# fill, the object is the whole dump, and when either side fails the other is stopped - a dump
# child that dies aborts the upload, an upload that fails kills the child - with no tempfile, no
# open multipart upload and no zombie left. Through the fault proxy, which sees every request.
class CaptureStreamTest < HCTest::TestCase
  include HCTest::ChildHelpers

  PART = 5 * 1024 * 1024
  PART_PUT = /partNumber=/

  def setup
    @proxy = HCTest::FaultProxy.start(HCTest::Services.s3.port)
    @tmpdir = Dir.mktmpdir("hc-stream-")
    @prefix = "stream-#{Process.pid}-#{rand(1 << 30)}/"
    HeapCapture.configure do |c|
      c.tmpdir = @tmpdir
      c.destination = "s3://#{HCTest::Services::BUCKET}/#{@prefix}"
      c.endpoint = @proxy.endpoint
      c.part_size = PART
      c.logger = Logger.new(File::NULL)
    end
  end

  def teardown
    stop_capture_threads
  ensure
    @proxy&.stop
    @ballast = nil
    FileUtils.rm_rf(@tmpdir)
  end

  def test_parts_go_up_while_the_child_still_dumps_and_the_object_is_the_whole_dump
    build_ballast
    capture, child = start_capture(compression: :none)
    hold_child_mid_dump(child, @tmpdir, 2 * PART)
    wait_for_first_part # times out if parts wait for the dump to end
    resume_child(child)
    result = finish(capture)

    assert_equal "ok", result["status"], result["error"]
    assert_operator @proxy.count("PUT", PART_PUT), :>, 2, "a dump of #{result['bytes']} bytes went up in parts"
    assert_equal 1, @proxy.completed.size
    assert_nothing_open
    assert_reaped(child)
    assert_empty Dir.children(@tmpdir), "the tempfile is gone"

    body = download(result["location"])
    assert_equal result["bytes"], body.bytesize
    assert_equal result["raw_bytes"], body.bytesize, "compression none stores the ndjson itself"
    assert(body.each_line.all? { |line| JSON.parse(line).is_a?(Hash) }, "every line of the stored dump is JSON")
    assert body.include?("ballast string 199999"), "the last objects made it into the object"
  end

  # On the main thread, where Ruby runs signal handlers: the dump child's exit interrupts it while
  # the last part is still to go (Ruby 3.4's own SIGCHLD handling does; here a trap makes it so on
  # every Ruby). The upload goes on where it was; it once started again and sent the dump twice.
  def test_the_dump_child_exiting_under_a_chld_handler_does_not_send_the_dump_twice
    assert_same Thread.main, Thread.current, "trap handlers run on the main thread only"
    build_ballast
    handled = []
    previous = trap("CHLD") { handled << Process.clock_gettime(Process::CLOCK_MONOTONIC) }
    result = HeapCapture.capture(mode: :fork, compression: :none)

    assert_equal "ok", result["status"], result["error"]
    refute_empty handled, "the CHLD handler ran during the capture"
    first_part = @proxy.requests.find { |r| r.method == "PUT" && r.query.to_s.match?(PART_PUT) }
    assert_operator first_part.received_at, :<, handled.first, "the child exited after the upload had begun"
    assert_operator @proxy.count("PUT", PART_PUT), :>, 2, "a dump of #{result['bytes']} bytes went up in parts"
    assert_equal 1, @proxy.initiated.size, "one multipart upload, not one more after the child exited"
    assert_empty @proxy.aborted
    assert_equal 1, @proxy.completed.size
    assert_equal (result["bytes"] + PART - 1) / PART, @proxy.count("PUT", PART_PUT), "each part sent once"
    assert_nothing_open
  ensure
    trap("CHLD", previous || "DEFAULT")
  end

  def test_a_dump_that_stays_within_one_part_goes_up_as_a_single_put
    part_size = 256 * 1024 * 1024 # more than this test process's gzipped dump
    result = HeapCapture.capture(part_size: part_size)
    assert_equal "ok", result["status"], result["error"]
    assert_operator result["bytes"], :<, part_size
    assert_equal 0, @proxy.count("POST", /uploads/), "no multipart upload for one part"
    puts_made = @proxy.requests.select { |r| r.method == "PUT" }.map { |r| File.basename(r.path) }
    key = File.basename(result["location"])
    assert_equal [key, HeapCapture::Summary.key_for(key)], puts_made, "one PUT for the dump, one for its summary"
    assert_equal result["bytes"], download(result["location"]).bytesize
    assert_empty Dir.children(@tmpdir)
  end

  def test_a_dump_child_killed_while_its_parts_go_up_aborts_the_upload
    build_ballast
    capture, child = start_capture(compression: :none)
    hold_child_mid_dump(child, @tmpdir, 2 * PART)
    wait_for_first_part
    Process.kill(:KILL, child)
    result = finish(capture)

    assert_equal "error", result["status"]
    assert_match(/\Athe heap dump failed: dump child killed by SIGKILL/, result["error"],
                 "the dump's failure is the reason given, not the upload it cut short")
    assert_equal 1, @proxy.aborted.size, "the multipart upload was aborted"
    assert_empty @proxy.completed
    assert_nothing_open
    assert_reaped(child)
    assert_empty Dir.children(@tmpdir)
    assert_empty bucket_keys
  end

  def test_s3_refusing_a_part_mid_dump_kills_the_child_and_says_why
    build_ballast
    # The refusal starts once the child is seen and stopped: set before, the first part refused
    # would end the child in a few ms, before the test could find it.
    capture, child = start_capture(compression: :none)
    hold_child_mid_dump(child, @tmpdir, 0)
    @proxy.add(:respond, method: "PUT", query: PART_PUT, times: nil, status: 403,
                         body: HCTest::FaultProxy::ACCESS_DENIED)
    resume_child(child)
    result = finish(capture)

    assert_equal "error", result["status"]
    assert_match(/AccessDenied/, result["error"])
    assert_match(/multipart upload was aborted/, result["error"])
    assert_nothing_open
    assert_reaped(child)
    assert_empty Dir.children(@tmpdir)
  end

  def test_raising_into_the_capturing_thread_mid_upload_stops_both_sides
    build_ballast
    capture, child = start_capture(compression: :none)
    hold_child_mid_dump(child, @tmpdir, 2 * PART)
    wait_for_first_part
    capture.raise(RuntimeError, "the worker is shutting down")
    error = assert_raises(RuntimeError) { capture.join(30) }
    assert_equal "the worker is shutting down", error.message

    assert_reaped(child)
    assert_empty Dir.children(@tmpdir)
    assert_equal 1, @proxy.aborted.size, "the multipart upload was aborted"
    assert_nothing_open
    refute HeapCapture::Capture::LOCK.locked?, "the capture lock is released"
  end

  private

  # ~110 MB of plain ndjson: the dump lasts long enough for several 5 MiB parts to go up during it.
  def build_ballast
    @ballast = Array.new(300_000) { |i| format("ballast string %-80d", i) }
  end

  def wait_for_first_part
    HCTest::Services.wait_until("the first part to reach S3", timeout: 30, interval: 0.002) do
      @proxy.count("PUT", PART_PUT).positive?
    end
  end

  def finish(capture)
    assert capture.join(60), "the capture did not end"
    capture.value
  end

  def assert_nothing_open
    assert_empty @proxy.open_uploads, "no multipart upload left open"
    assert_equal 0, @proxy.sha_mismatches, "every x-amz-content-sha256 matched its body"
  end

  def s3 = HeapCapture::S3::Client.from_config(bucket: HCTest::Services::BUCKET)

  def download(location)
    target = File.join(@tmpdir, "readback")
    s3.download(location.delete_prefix("s3://#{HCTest::Services::BUCKET}/"), to: target)
    File.binread(target).tap { File.delete(target) }
  end

  def bucket_keys = s3.list(prefix: @prefix).map { |o| o["key"] }
end
