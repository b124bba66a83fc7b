# frozen_string_literal: true

require "test_helper"
require "stringio"
require "tmpdir"
require_relative "../support/fault_proxy"
require_relative "../support/file_capture"

# A capture's summary (KEY.summary.json) is stored only beside its dump: a capture killed while its
# dump goes up (compression none, fork and inline mode, to the test S3 server through the fault
# proxy), one S3 refuses, one killed while it dumps for a folder (which takes the dump only once it
# is whole), one the folder refuses, leaves no summary that `report KEY` would take for a dump that
# is not there. An uninterrupted capture stores both.
class CaptureInterruptSummaryTest < HCTest::TestCase
  include HCTest::FileCapture

  PART = 5 * 1024 * 1024 # S3's minimum: the dump is several parts

  def setup
    HCTest::Services.s3
    # Several parts of plain dump whatever ran before this test.
    @ballast = Array.new(150_000) { |i| "interrupted capture ballast #{i} " * 3 }
  end

  def teardown
    @capture&.kill&.join(30)
    @proxy&.stop
    FileUtils.rm_rf([@tmpdir, @dest].compact)
    @ballast = nil
  end

  # Fork mode uploads while the child dumps; inline mode once the dump is written.
  %i[fork inline].each do |mode|
    define_method("test_a_kill_mid_upload_leaves_no_summary_without_its_dump_#{mode}_mode") do
      use_s3_destination(mode: mode)
      @proxy.add(:stall, method: "PUT", query: /partNumber=2&/, times: nil) # the upload stays mid-way
      start_capture
      wait_for_the_capture("part 2 to reach S3") { @proxy.count("PUT", /partNumber=2&/) >= 1 }
      kill_the_capture

      keys = stored_keys
      assert_empty orphan_summaries(keys)
      assert_empty keys, "nothing is stored: the upload was aborted"
      assert_empty @proxy.open_uploads, "the multipart upload was aborted at S3"
      assert_empty Dir.children(@tmpdir), "the capture's tempfiles are gone"
    end
  end

  # The last moment of the upload: S3 has the Complete (and may store the dump), its answer is late.
  def test_a_kill_while_s3_completes_the_upload_leaves_no_summary_without_its_dump
    use_s3_destination
    @proxy.add(:delay, method: "POST", query: /uploadId=/, seconds: 5, times: nil)
    start_capture
    wait_for_the_capture("the Complete to reach S3") { @proxy.count("POST", /uploadId=/) >= 1 }
    kill_the_capture

    assert_empty orphan_summaries(stored_keys)
  end

  def test_an_upload_s3_refuses_stores_no_summary
    use_s3_destination
    @proxy.add(:respond, method: "PUT", query: /partNumber=2&/, status: 403,
                         body: HCTest::FaultProxy::ACCESS_DENIED, times: nil)
    result = HeapCapture.capture
    assert_equal "error", result["status"]
    assert_match(/403/, result["error"])
    assert_empty stored_keys
  end

  def test_an_uninterrupted_capture_to_s3_stores_the_summary_beside_its_dump
    use_s3_destination
    result = HeapCapture.capture
    assert_equal "ok", result["status"], result["error"]
    dump_key = result["location"].delete_prefix("s3://#{HCTest::Services::BUCKET}/")
    assert_equal [dump_key, HeapCapture::Summary.key_for(dump_key)].sort, stored_keys.sort
  end

  def test_a_kill_mid_dump_to_a_folder_leaves_no_summary
    use_folder_destination
    start_capture
    wait_for_the_capture("the dump's tempfile to grow") do
      Dir.children(@tmpdir).any? { |name| name.end_with?(".ndjson") && File.size?(File.join(@tmpdir, name)) }
    end
    kill_the_capture

    assert_empty Dir.children(@dest), "nothing is stored"
    assert_empty Dir.children(@tmpdir), "the capture's tempfiles are gone"
  end

  def test_a_folder_that_cannot_take_the_dump_gets_no_summary
    use_folder_destination
    blocked = File.join(@dest, "not-a-dir")
    File.write(blocked, "")
    HeapCapture.config.destination = "file://#{blocked}/dumps"
    result = HeapCapture.capture
    assert_equal "error", result["status"]
    assert_equal ["not-a-dir"], Dir.children(@dest)
  end

  def test_an_uninterrupted_capture_to_a_folder_stores_the_summary_beside_its_dump
    use_folder_destination
    result = HeapCapture.capture
    assert_equal "ok", result["status"], result["error"]
    dump = File.basename(result["location"])
    assert_equal [dump, HeapCapture::Summary.key_for(dump)].sort, Dir.children(@dest).sort
  end

  private

  def settings(mode) = { compression: :none, mode: mode, logger: Logger.new(StringIO.new) }

  # Through the fault proxy: its rules stop the upload where a test wants it.
  def use_s3_destination(mode: :fork)
    @proxy = HCTest::FaultProxy.start(HCTest::Services.s3.port)
    @prefix = "interrupted-#{Process.pid}-#{rand(1 << 30)}/"
    @tmpdir = Dir.mktmpdir("hc-interrupt-tmp-")
    HeapCapture.config.apply(settings(mode))
    HeapCapture.config.apply(tmpdir: @tmpdir, destination: "s3://#{HCTest::Services::BUCKET}/#{@prefix}",
                             endpoint: @proxy.endpoint, region: ENV.fetch("AWS_REGION"),
                             access_key_id: ENV.fetch("AWS_ACCESS_KEY_ID"),
                             secret_access_key: ENV.fetch("AWS_SECRET_ACCESS_KEY"), part_size: PART, concurrency: 2)
  end

  def use_folder_destination
    use_file_destination
    HeapCapture.config.apply(settings(:fork))
  end

  def start_capture
    @capture = Thread.new { HeapCapture.capture }
    @capture.report_on_exception = false
  end

  # Waits (bounded) for the capture to reach what the block checks; it must still run then.
  def wait_for_the_capture(what)
    HCTest::Services.wait_until(what, timeout: 60) { yield || !@capture.alive? }
    assert @capture.alive?, -> { "the capture ended before the kill: #{@capture.value.inspect}" } # lazy: value joins
  end

  def kill_the_capture
    @capture.kill
    assert @capture.join(30), "the capture thread ended after Thread#kill"
    @capture = nil
  end

  # Keys under the test's prefix, read from S3 itself (not through the proxy's faults).
  def stored_keys
    store = HeapCapture::Destination.for(HeapCapture.config.dup.apply(endpoint: ENV.fetch("AWS_ENDPOINT_URL_S3")))
    store.entries(@prefix).map(&:key)
  end

  # Summaries stored without the dump they describe.
  def orphan_summaries(keys)
    keys.grep(/#{Regexp.escape(HeapCapture::Summary::SUFFIX)}\z/) -
      keys.grep(HeapCapture::Destination::DUMP).map { |key| HeapCapture::Summary.key_for(key) }
  end
end
