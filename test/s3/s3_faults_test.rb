# frozen_string_literal: true

require "test_helper"
require_relative "../support/s3_helpers"
require_relative "../support/fault_proxy"

# The faults real S3 throws, injected by HCTest::FaultProxy in front of the test server:
# transient ones end with a correct object; permanent ones raise UploadError and leave no
# multipart upload open (the proxy answers and records AbortMultipartUpload).
class S3FaultsTest < HCTest::TestCase
  include HCTest::S3Helpers

  PART_PUT = /partNumber=/

  def setup
    super
    @proxy = HCTest::FaultProxy.start(HCTest::Services.s3.port)
  end

  def teardown
    @proxy&.stop
    super
  end

  def proxied(**options)
    # 3 s, not 1: on a loaded 2-core machine a busy second looked like a stall and cost a part all
    # of its attempts; stalled requests are held 60 s, so the stall path is still what ends them.
    client(endpoint: @proxy.endpoint, low_speed_time: 3, **options)
  end

  def assert_stored(path, key)
    assert_equal sha256_file(path), stored_sha256(key), "the object read back is the file"
  end

  def assert_nothing_open
    assert_empty @proxy.open_uploads, "no multipart upload left open"
    assert_equal 0, @proxy.sha_mismatches, "every x-amz-content-sha256 matched its body"
  end

  # RGW 16 answers CompleteMultipartUpload with an empty <ETag></ETag> and no ETag header: the
  # result's ETag is then S3's multipart form computed from the parts (what RGW stores), never "".
  def test_a_complete_answer_with_an_empty_etag_gives_the_multipart_etag_of_the_parts
    path = random_file(2 * PART + 12_345)
    @proxy.add(:respond, method: "POST", query: /uploadId=/, status: 200,
                         body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUploadResult>" \
                               "<Bucket>#{bucket}</Bucket><Key>empty-etag</Key><ETag></ETag></CompleteMultipartUploadResult>")
    result = proxied.upload(path, key: "empty-etag")
    bytes = File.binread(path)
    parts = (0...bytes.bytesize).step(PART).map { |offset| bytes.byteslice(offset, PART) }
    assert_equal 3, parts.size
    expected = Digest::MD5.hexdigest(parts.map { |part| Digest::MD5.digest(part) }.join)
    assert_equal %("#{expected}-3"), result["etag"]
    assert_equal 3, result["parts"]
  end

  # Every request names the client (S3's access logs and support ask for it).
  def test_every_request_says_it_comes_from_heapcapture_and_libcurl
    proxied.upload(random_file(PART + 1), key: "user-agent")
    agents = @proxy.requests.map { |r| r.headers.find { |name, _| name.casecmp?("user-agent") }&.last }
    refute_empty agents
    agents.each { |agent| assert_match(%r{\Aheapcapture/#{Regexp.escape(HeapCapture::VERSION)} libcurl/\d+\.\d+}, agent.to_s) }
  end

  # Each body goes with its Content-MD5 (and the SHA-256 it is signed with): a byte changed on the
  # way is refused by S3 (BadDigest or XAmzContentSHA256Mismatch), retried, and never stored.
  def test_a_body_corrupted_on_its_way_is_refused_by_s3_and_sent_again
    path = random_file(3 * PART + 777)
    @proxy.add(:corrupt, method: "PUT", query: /partNumber=2&/)
    key = unique_key("corrupted")
    result = proxied.upload(path, key: key)
    assert_stored(path, key)
    assert_equal 3 + 2, @proxy.count("PUT", PART_PUT), "part 2 went twice, the others once"
    bytes = File.binread(path)
    @proxy.requests.select { |r| r.method == "PUT" }.each do |put|
      number = put.query[/partNumber=(\d+)/, 1].to_i
      md5 = put.headers.find { |name, _| name.casecmp?("content-md5") }&.last
      assert_equal [Digest::MD5.digest(bytes.byteslice((number - 1) * PART, PART))].pack("m0"), md5,
                   "part #{number} carries the MD5 of its bytes"
    end
    assert_equal 4, result["parts"]
    assert_nothing_open
  end

  def test_a_single_put_corrupted_on_its_way_is_sent_again
    path = random_file(1000)
    @proxy.add(:corrupt, method: "PUT")
    key = unique_key("corrupted-single")
    proxied.upload(path, key: key)
    assert_stored(path, key)
    assert_equal 2, @proxy.count("PUT")
    md5 = @proxy.requests.last.headers.find { |name, _| name.casecmp?("content-md5") }&.last
    assert_equal Digest::MD5.base64digest(File.binread(path)), md5
  end

  def test_transient_faults_on_every_step_end_with_a_correct_object
    path = random_file(3 * PART + 99)
    key = unique_key("transient")
    rules = [
      @proxy.add(:internal_error, method: "POST", query: /\Auploads/), # initiate: 500
      @proxy.add(:slowdown, method: "PUT", query: /partNumber=2&/, times: 2), # 503 SlowDown twice
      @proxy.add(:reset, method: "PUT", query: /partNumber=3&/),                 # reset mid-body
      @proxy.add(:stall, method: "PUT", query: /partNumber=4&/),                 # stall until the low-speed timeout
      @proxy.add(:error_in_200, method: "POST", query: /uploadId=/) # Complete: 200 with <Error>
    ]
    result = proxied.upload(path, key: key)
    assert_equal 4, result["parts"]
    assert_equal [1, 2, 1, 1, 1], rules.map(&:hits), "every fault was thrown"
    assert_stored(path, key)
    assert_equal 1, @proxy.initiated.size
    assert_equal @proxy.initiated, @proxy.completed
    assert_empty @proxy.aborted
    assert_nothing_open
  end

  def test_transient_faults_on_a_single_put
    path = random_file(1000)
    key = unique_key("single")
    @proxy.add(:slowdown, method: "PUT")
    @proxy.add(:reset, method: "PUT")
    @proxy.add(:internal_error, method: "PUT")
    proxied.upload(path, key: key)
    assert_equal 4, @proxy.count("PUT")
    assert_stored(path, key)
  end

  def test_a_part_that_keeps_failing_raises_and_aborts_the_upload
    path = random_file(2 * PART + 1)
    @proxy.add(:slowdown, method: "PUT", query: /partNumber=2&/, times: nil)
    error = assert_raises(HeapCapture::UploadError) { proxied(max_attempts: 3).upload(path, key: unique_key("perm")) }
    assert_equal "SlowDown", error.code
    assert_equal 503, error.status
    assert_equal "FAULTPROXY", error.request_id
    assert_match(/uploading part 2 of 3 to #{Regexp.escape(@proxy.endpoint)}/, error.message)
    assert_includes error.message, "gave up after 3 attempts"
    refute_includes error.message, "before that", "the last failure was S3's last answer: named once"
    assert_includes error.message, "the multipart upload was aborted"
    assert_equal 3, @proxy.count("PUT", /partNumber=2&/)
    assert_equal @proxy.initiated, @proxy.aborted
    assert_empty @proxy.completed
    assert_nothing_open
  end

  def test_a_complete_that_keeps_answering_error_in_200_raises_and_aborts
    @proxy.add(:error_in_200, method: "POST", query: /uploadId=/, times: nil)
    error = assert_raises(HeapCapture::UploadError) do
      proxied(max_attempts: 2).upload(random_file(PART + 1), key: unique_key("complete"))
    end
    assert_equal "InternalError", error.code
    assert_equal 200, error.status
    assert_includes error.message, "completing the multipart upload"
    assert_equal 1, @proxy.aborted.size
    assert_nothing_open
  end

  def test_a_permanent_refusal_is_not_retried
    @proxy.add(:respond, method: "PUT", query: /partNumber=1&/, status: 403,
                         body: "<Error><Code>AccessDenied</Code><Message>Access Denied</Message>" \
                               "<RequestId>R1</RequestId></Error>")
    error = assert_raises(HeapCapture::UploadError) { proxied.upload(random_file(PART + 1), key: unique_key("denied")) }
    assert_equal ["AccessDenied", 403, "R1"], [error.code, error.status, error.request_id]
    assert_equal 1, @proxy.count("PUT", /partNumber=1&/)
    assert_nothing_open
  end

  def test_a_stall_on_every_attempt_is_a_timeout_error
    @proxy.add(:stall, method: "PUT", times: nil)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    error = assert_raises(HeapCapture::UploadError) { proxied(max_attempts: 2).upload(random_file(10), key: "stall") }
    assert_match(/the transfer stalled \(no byte moved for 3 s\) while uploading to/, error.message)
    assert_includes error.message, "gave up after 2 attempts"
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 30
  end

  # The message states what ended the last attempt (a stall), not S3's earlier 503, and still
  # names that answer, in its place: before the stalls.
  def test_a_slowdown_then_stalls_until_give_up_names_the_stall_then_the_answer
    @proxy.add(:slowdown, method: "PUT", query: /partNumber=2&/)
    @proxy.add(:stall, method: "PUT", query: /partNumber=2&/, times: nil)
    error = assert_raises(HeapCapture::UploadError) do
      proxied(max_attempts: 3).upload(random_file(2 * PART + 1), key: "slowdown-then-stall")
    end
    assert_match(/\Aheapcapture: the transfer stalled \(no byte moved for 3 s\) while uploading part 2 of 3 to \S+; /,
                 error.message)
    assert_includes error.message, "; gave up after 3 attempts; before that, S3's last answer (to attempt 1) was " \
                                   "HTTP 503 SlowDown: Please reduce your request rate. (request id FAULTPROXY); " \
                                   "the multipart upload was aborted"
    assert_nil error.status, "the last attempt got no answer"
    assert_nil error.code
    assert_equal 3, @proxy.count("PUT", /partNumber=2&/)
    assert_nothing_open
  end

  def test_a_download_cut_mid_answer_is_retried
    path = random_file(PART + 3)
    key = unique_key("download")
    client.upload(path, key: key)
    @proxy.add(:reset_response, method: "GET")
    out = File.join(@tmpdir, "out")
    assert_equal PART + 3, proxied.download(key, to: out)
    assert_equal 2, @proxy.count("GET")
    assert_equal sha256_file(path), sha256_file(out)
  end

  # The test server escapes keys twice in listings; real S3 escapes once. Canned pages check
  # entity decoding and continuation tokens.
  def test_list_follows_continuation_tokens_and_decodes_entities
    page1 = "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>true</IsTruncated>" \
            "<Contents><Key>d/a &amp; b.gz</Key><LastModified>2026-11-21T20:30:42.000Z</LastModified><Size>5</Size></Contents>" \
            "<NextContinuationToken>tok/en+=</NextContinuationToken></ListBucketResult>"
    page2 = "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>false</IsTruncated>" \
            "<Contents><Key>d/&lt;c&gt;.gz</Key><LastModified>2026-11-21T20:31:00.000Z</LastModified><Size>7</Size></Contents>" \
            "</ListBucketResult>"
    second = @proxy.add(:respond, method: "GET", query: /continuation-token=tok%2Fen%2B%3D/, body: page2)
    first = @proxy.add(:respond, method: "GET", query: /list-type=2/, body: page1)
    listed = proxied.list(prefix: "d/")
    assert_equal [1, 1], [first.hits, second.hits]
    assert_equal ["d/a & b.gz", "d/<c>.gz"], listed.map { |o| o["key"] }
    assert_equal [5, 7], listed.map { |o| o["size"] }
    assert_equal Time.utc(2026, 11, 21, 20, 30, 42), listed.first["last_modified"]
  end

  def test_a_listing_that_is_not_xml_is_a_clear_error
    @proxy.add(:respond, method: "GET", body: "<html>gateway</html")
    error = assert_raises(HeapCapture::S3Error) { proxied.list }
    refute_kind_of HeapCapture::UploadError, error
    assert_match(/listing .* not well-formed XML/, error.message)
  end
end
