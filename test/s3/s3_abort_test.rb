# frozen_string_literal: true

require "test_helper"
require "timeout"
require_relative "../support/s3_helpers"
require_relative "../support/fault_proxy"

# An upload stopped midway leaves nothing at S3, not even a part S3 was storing when the stop came.
# RGW shows the race AWS documents: a part that completes while AbortMultipartUpload runs is kept,
# where neither ListObjects nor ListMultipartUploads shows it and garbage collection never takes
# it; only RGW's bucket index (radosgw-admin bucket list) lists it. So once stopped, the client
# starts no part, waits (bounded) for the parts S3 has received, drops those still being sent
# (S3 never keeps a short body), aborts, and asks ListParts whether anything outlived the abort.
class S3AbortTest < HCTest::TestCase
  include HCTest::S3Helpers

  HOLD = 0.5 # seconds the proxy holds a part: within what the client waits for a received part

  def setup
    super
    @keys = []
  end

  def teardown
    @proxy&.stop
    super
  end

  def key(name) = unique_key(name).tap { |k| @keys << k }

  # Every key the test used: no part of it in RGW's index, no upload of it open, no object.
  def assert_nothing_left
    @proxy&.stop # the requests it still holds run to their end first
    parts = HCTest::Services.s3.multipart_entries(bucket).select do |name|
      @keys.any? do |k|
        name.start_with?("_multipart_#{k}.")
      end
    end
    assert_empty parts, "RGW keeps no part of an aborted upload"
    assert_empty HCTest::Services.s3.open_uploads(bucket) & @keys, "no multipart upload left open"
    @keys.each { |k| assert_raises(Aws::S3::Errors::NotFound, k) { aws.head_object(bucket: bucket, key: k) } }
  end

  # ---- stopped at many points, straight to RGW (the race is RGW's own, not staged by a proxy)

  # 300 MiB takes 1.5-3 s here: every stop lands mid-upload, with 4 parts in flight.
  STOPS = [0.1, 0.25, 0.4, 0.55, 0.7, 0.85].freeze

  def test_uploads_killed_or_raised_into_at_six_points_leave_no_part
    path = random_file(300 * MIB)
    STOPS.each_with_index do |delay, i|
      thread = Thread.new { client(concurrency: 4).upload(path, key: key("stopped-#{i}")) }
      thread.report_on_exception = false
      sleep delay
      if i.even?
        thread.kill
        thread.join(30)
        refute thread.alive?, "upload #{i} ended after its stop"
        assert_nil thread.value, "upload #{i} was still running when stopped"
      else
        thread.raise(Interrupt, "the worker is shutting down")
        assert_raises(Interrupt) { thread.join(30) }
        refute thread.alive?, "upload #{i} ended after its stop"
      end
    end
    assert_nothing_left
  end

  def test_processes_sent_sigterm_at_two_points_leave_no_part
    path = random_file(300 * MIB)
    [0.3, 0.8].each_with_index do |delay, i|
      script = <<~RUBY
        require "heapcapture"
        s3 = #{client_source(concurrency: 4)}
        $stdout.puts "uploading"
        $stdout.flush
        s3.upload(#{path.inspect}, key: #{key("sigterm-#{i}").inspect})
        $stdout.puts "finished"
      RUBY
      ruby_script(script, err: File::NULL) do |io|
        assert_equal "uploading\n", Timeout.timeout(20) { io.gets }
        sleep delay
        Process.kill(:TERM, io.pid)
        assert_nil Timeout.timeout(20) { io.gets }, "SIGTERM came before the upload finished"
      end
      assert_equal "TERM", $?.termsig && Signal.signame($?.termsig), "ended by its SIGTERM (#{$?.inspect})"
    end
    assert_nothing_left
  end

  # ---- through the fault proxy: what the client does once stopped, request by request

  def proxied(**options) = client(endpoint: @proxy.endpoint, concurrency: 4, low_speed_time: 30, **options)

  def start_proxy
    @proxy = HCTest::FaultProxy.start(HCTest::Services.s3.port)
  end

  def part_puts = @proxy.requests.select { |r| r.method == "PUT" && r.query.include?("partNumber=") }

  # RGW has stored parts 1-4, their answers are held HOLD s: the abort waits for them.
  def test_the_abort_waits_for_the_answers_of_parts_s3_has_received
    start_proxy
    @proxy.add(:delay, method: "PUT", query: /partNumber=[1-4]&/, seconds: HOLD, times: nil)
    path = random_file(8 * PART)
    thread = Thread.new { proxied.upload(path, key: key("settle")) }
    thread.report_on_exception = false
    HCTest::Services.wait_until("4 parts to reach S3", timeout: 30, interval: 0.005) { part_puts.size >= 4 }
    received = part_puts
    thread.kill
    assert thread.join(20), "the upload ended after Thread#kill"
    abort = @proxy.requests.find { |r| r.method == "DELETE" }
    assert abort, "the upload was aborted"
    received.each do |part|
      assert part.answered_at, "part #{part.query[/partNumber=(\d+)/, 1]} was answered"
      assert_operator abort.received_at, :>=, part.answered_at, "the abort came after S3 answered that part"
    end
    list = @proxy.requests.find { |r| r.method == "GET" && r.query.include?("uploadId=") }
    assert list, "ListParts was asked after the abort"
    assert_operator list.received_at, :>=, abort.received_at
    assert_nothing_left
  end

  # A part S3 received but did not answer within the bound: the abort goes ahead, and says so.
  def test_a_received_part_still_unanswered_after_the_bound_is_named
    start_proxy
    # Part 8 is refused once parts 3 to 7 are answered: by then part 2 has surely all gone out.
    @proxy.add(:delay, method: "PUT", query: /partNumber=2&/, seconds: 8)
    @proxy.add(:respond, method: "PUT", query: /partNumber=8&/, status: 403,
                         body: HCTest::FaultProxy::ACCESS_DENIED)
    path = random_file(8 * PART)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    error = assert_raises(HeapCapture::UploadError) { proxied.upload(path, key: key("unsettled")) }
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 7, "it did not wait for the 8 s answer"
    assert_match(/AccessDenied.* while uploading part 8 of 8/, error.message)
    assert_match(/the multipart upload was aborted, but 1 part\(s\) S3 had received were still unanswered 2 s later/,
                 error.message)
    assert_nothing_left # part 2 went in before the abort: the abort took it
  end

  def test_a_refused_part_while_others_are_stored
    start_proxy
    [1, 2].each { |part| @proxy.add(:hold_tail, method: "PUT", query: /partNumber=#{part}&/, seconds: HOLD) }
    @proxy.add(:respond, method: "PUT", query: /partNumber=3&/, status: 403,
                         body: HCTest::FaultProxy::ACCESS_DENIED)
    path = random_file(8 * PART)
    error = assert_raises(HeapCapture::UploadError) { proxied.upload(path, key: key("refused")) }
    assert_match(/AccessDenied.* while uploading part 3 of 8/, error.message)
    assert_match(/the multipart upload was aborted, nothing was stored/, error.message)
    received = part_puts.to_h { |r| [r.query[/partNumber=(\d+)/, 1].to_i, r] }
    # Part 3 was refused, and each of the held parts 1 and 2 that S3 had received was answered
    # before the abort. Sent beside part 3 (4 at a time), part 1 or 2 may still have been going
    # out when the refusal came back (part 2 on a loaded CI machine): cut off, S3 never had it.
    # Part 4 may have been answered too: it is aborted all the same.
    assert received[3]&.answered_at, "part 3 was refused"
    held = received.slice(1, 2)
    refute_empty held, "part 1 or 2 reached S3 before the refusal"
    held.each { |number, part| assert part.answered_at, "part #{number}, which S3 had received, was answered" }
    assert_nothing_left
  end

  def test_a_part_that_keeps_failing_while_another_is_stored
    start_proxy
    @proxy.add(:hold_tail, method: "PUT", query: /partNumber=5&/, seconds: HOLD)
    @proxy.add(:internal_error, method: "PUT", query: /partNumber=6&/, times: nil)
    path = random_file(8 * PART)
    error = assert_raises(HeapCapture::UploadError) { proxied(max_attempts: 2).upload(path, key: key("failing")) }
    assert_match(/InternalError.* while uploading part 6 of 8 .*gave up after 2 attempts/, error.message)
    assert_match(/the multipart upload was aborted, nothing was stored/, error.message)
    assert_nothing_left
  end

  LIST_PARTS_WITH_ONE = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListPartsResult><Bucket>b</Bucket><Key>k</Key>" \
                        "<Part><PartNumber>2</PartNumber><ETag>\"0123456789abcdef0123456789abcdef\"</ETag>" \
                        "<Size>5242880</Size></Part><IsTruncated>false</IsTruncated></ListPartsResult>"

  def refused_upload(name)
    @proxy.add(:respond, method: "PUT", query: /partNumber=1&/, status: 403,
                         body: HCTest::FaultProxy::ACCESS_DENIED)
    assert_raises(HeapCapture::UploadError) { proxied(concurrency: 1).upload(random_file(2 * PART), key: key(name)) }
  end

  def test_a_part_listed_after_the_abort_is_aborted_again
    start_proxy
    @proxy.add(:respond, method: "GET", query: /uploadId=/, status: 200, body: LIST_PARTS_WITH_ONE)
    error = refused_upload("listed-once")
    assert_equal 2, @proxy.count("DELETE", /uploadId=/), "aborted again after ListParts showed a part"
    assert_equal 2, @proxy.count("GET", /uploadId=/), "and listed again: RGW says NoSuchUpload"
    assert_match(/the multipart upload was aborted, nothing was stored/, error.message)
    refute error.message.include?("still lists")
    assert_nothing_left
  end

  def test_parts_still_listed_after_three_aborts_are_reported
    start_proxy
    @proxy.add(:respond, method: "GET", query: /uploadId=/, status: 200, body: LIST_PARTS_WITH_ONE, times: nil)
    error = refused_upload("listed-always")
    assert_equal 3, @proxy.count("DELETE", /uploadId=/), "three aborts, no more (RGW answers the 2nd and 3rd NoSuchUpload)"
    upload_id = @proxy.initiated.fetch(0)
    assert_includes error.message, "the multipart upload #{upload_id} was aborted 3 times and S3 still lists 1 of its " \
                                   "parts: they stay (and are billed) until you abort it again"
  end
end
