# frozen_string_literal: true

require "test_helper"
require_relative "../support/listener_helpers"
require_relative "../support/s3_helpers"
require_relative "../support/app_helpers"

# The whole chain in one process, with the listener's default capture hook: exclusive arms, a
# signal with wait comes back with the capture's result, and the object is in the bucket.
class CaptureChainTest < HCTest::TestCase
  include HCTest::ListenerHelpers
  include HCTest::S3Helpers
  include HCTest::AppHelpers

  RESULT_KEYS = %w[status dyno pid payload location url bytes raw_bytes pause_ms dump_ms upload_ms tracing
                   error].freeze

  def setup
    HCTest::Services.start! # first: the configuration made in super reads the S3 settings from ENV
    super
    # An earlier test's exclusive may have left HeapCapture's tracing default set while
    # another's teardown stopped the tracing: start from none, so this test's exclusive starts it.
    HCTest.stop_allocation_tracing
    @prefix = unique_prefix("chain")
    HeapCapture.configure do |c|
      c.tmpdir = @tmpdir
      c.destination = "s3://#{bucket}/#{@prefix}"
    end
  end

  def teardown
    HCTest.stop_allocation_tracing # leave none on for the tests that follow
    super
  end

  def test_exclusive_then_signal_with_wait_stores_the_dump_in_the_bucket_and_replies_as_api_md
    arm("web.1")
    results = HeapCapture.signal("go", wait: 60)

    assert_equal 1, results.size, "#{results.inspect}\n#{log_text}"
    result = results.first
    assert_equal "ok", result["status"], result["error"]
    (RESULT_KEYS + %w[request_id channel]).each { |key| assert result.key?(key), "the reply has #{key}" }
    assert_equal ["web.1", Process.pid, "go", "heapcapture_web_1"], result.values_at("dyno", "pid", "payload", "channel")
    assert_match(/\Asampled \((1 in ~\d+ allocations|no sample yet)\)\z/, result["tracing"], "the default tracing, with its rate")
    assert_match %r{\As3://#{bucket}/#{Regexp.escape(@prefix)}\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ-web\.1-pid#{Process.pid}-heap\.ndjson\.gz\z}, # rubocop:disable Layout/LineLength
                 result["location"]
    assert_match(/X-Amz-Signature=/, result["url"])
    %w[bytes raw_bytes].each { |key| assert_operator result[key], :>, 0 }
    %w[pause_ms dump_ms upload_ms].each { |key| assert_kind_of Numeric, result[key] }

    key = result["location"].delete_prefix("s3://#{bucket}/")
    head = aws.head_object(bucket: bucket, key: key)
    assert_equal result["bytes"], head.content_length, "aws-sdk-s3 sees the stored bytes"
    records = stored_dump_records(result["location"])
    assert(records.all? { |r| r.is_a?(Hash) && r["type"] }, "every line of the stored dump is an object record")
    assert_empty Dir.children(@tmpdir), "the tempfile was removed"
    assert_match(/capture ok #{Regexp.escape(result['location'])} #{result['bytes']} bytes; replied to 1 request/, log_text)
  end

  # A capture that fails is one ERROR line with its reason, not one from the capture and a second
  # from the listener; the listener's own line says whom it replied to.
  def test_a_failed_capture_is_logged_once
    arm("web.1", destination: "file:///proc/heapcapture-cannot-be-here", trace_allocations: false)
    results = HeapCapture.signal("go", wait: 60)
    assert_equal ["error"], results.map { |r| r["status"] }, log_text
    reason = results.first["error"]
    assert_match(%r{/proc/heapcapture-cannot-be-here}, reason)
    errors = log_text.lines.grep(/ERROR/)
    assert_equal 1, errors.size, log_text
    assert_includes errors.first, "heapcapture: capture failed: #{reason}"
    assert_match(/INFO -- : heapcapture: capture failed \(the error is logged above\); replied to 1 request\(s\)$/, log_text)
  end
end
