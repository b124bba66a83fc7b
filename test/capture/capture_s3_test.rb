# frozen_string_literal: true

require "test_helper"
require "json"
require "net/http"
require "zlib"
require "tmpdir"

# HeapCapture.capture into s3://bucket/prefix/ against the test S3 server (which checks SigV4).
class CaptureS3Test < HCTest::TestCase
  def setup
    HCTest::Services.s3
    @tmpdir = Dir.mktmpdir("hc-capture-s3-")
    ENV["HEAPCAPTURE_DYNO"] = "worker.2"
    HeapCapture.configure do |c|
      c.tmpdir = @tmpdir
      c.destination = "s3://#{HCTest::Services::BUCKET}/dumps/"
      c.logger = Logger.new(File::NULL)
    end
  end

  def teardown
    ENV.delete("HEAPCAPTURE_DYNO")
    FileUtils.rm_rf(@tmpdir)
  end

  def test_a_fork_mode_capture_lands_in_the_bucket_and_its_presigned_url_serves_it
    ObjectSpace.trace_object_allocations_start
    result = HeapCapture.capture("s3 please")

    assert_equal "ok", result["status"], result["error"]
    assert_match(%r{\As3://heapcapture-test/dumps/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ-worker\.2-pid#{Process.pid}-heap\.ndjson\.gz\z},
                 result["location"])
    assert_empty Dir.children(@tmpdir), "the tempfile must be gone"
    assert_kind_of Float, result["upload_ms"]

    response = Net::HTTP.get_response(URI(result["url"]))
    assert_equal "200", response.code, response.body
    body = response.body
    assert_equal result["bytes"], body.bytesize
    text = Zlib::GzipReader.new(StringIO.new(body)).read
    assert_equal result["raw_bytes"], text.bytesize
    assert(text.each_line.all? { |line| JSON.parse(line).is_a?(Hash) })
  ensure
    ObjectSpace.trace_object_allocations_stop
  end

  def test_s3_refusing_the_upload_is_an_error_result_and_removes_the_tempfile
    HeapCapture.config.secret_access_key = "not-the-secret"
    result = HeapCapture.capture(compression: :none)
    assert_equal "error", result["status"]
    assert_match(/SignatureDoesNotMatch|403/, result["error"])
    assert_nil result["location"]
    assert_empty Dir.children(@tmpdir)
  end

  def test_missing_credentials_are_a_configuration_error_before_any_dump
    HeapCapture.config.access_key_id = nil
    error = assert_raises(HeapCapture::ConfigurationError) { HeapCapture.capture }
    assert_match(/AWS_ACCESS_KEY_ID/, error.message)
    assert_empty Dir.children(@tmpdir)
  end
end
