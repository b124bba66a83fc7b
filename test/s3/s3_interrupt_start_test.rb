# frozen_string_literal: true

require "test_helper"
require "stringio"
require_relative "../support/s3_helpers"
require_relative "../support/fault_proxy"

# An interrupt that lands while S3 is starting a multipart upload (CreateMultipartUpload sent,
# its answer not read yet): the client waits for that one answer (at most 5 s) to learn the upload
# id, aborts the upload, and only then lets the interrupt go on. When the answer cannot be had,
# the log says which key may hold an open upload and what cleans it up.
class S3InterruptStartTest < HCTest::TestCase
  include HCTest::S3Helpers

  INITIATE = /\Auploads/

  def setup
    super
    @proxy = HCTest::FaultProxy.start(HCTest::Services.s3.port)
    @s3 = client(endpoint: @proxy.endpoint, concurrency: 2)
    @path = random_file(2 * PART + 1)
    @log = StringIO.new
    HeapCapture.configure { |c| c.logger = Logger.new(@log) }
  end

  def teardown
    @proxy&.stop
    super
  end

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  # Starts an upload in a thread and kills it once CreateMultipartUpload has reached the proxy.
  # Returns the seconds Thread#kill took to end the thread.
  def kill_while_starting(key)
    uploader = Thread.new { @s3.upload(@path, key: key) }
    HCTest::Services.wait_until("CreateMultipartUpload to reach the proxy", timeout: 30) do
      @proxy.count("POST", INITIATE) >= 1
    end
    killed_at = now
    uploader.kill
    assert uploader.join(15), "the uploader ended after Thread#kill"
    now - killed_at
  end

  def test_kill_while_the_start_is_answered_waits_for_the_id_and_aborts_the_upload
    @proxy.add(:delay, method: "POST", query: INITIATE, seconds: 1)
    took = kill_while_starting("killed-while-starting")

    assert_operator took, :<, 5, "Thread#kill returned within the bound"
    assert_equal 1, @proxy.initiated.size, "S3 started the upload"
    assert_equal @proxy.initiated, @proxy.aborted, "and it was aborted with the id read from the late answer"
    assert_empty @proxy.open_uploads
    assert_equal 0, @proxy.count("PUT"), "no part was sent after the interrupt"
    refute_match(/may have started/, @log.string)

    # The client is free again.
    @proxy.clear_rules
    assert_equal 100, @s3.upload(random_file(100), key: "after-kill")["bytes"]
  end

  def test_kill_when_the_answer_does_not_come_in_time_logs_the_open_upload
    @proxy.add(:delay, method: "POST", query: INITIATE, seconds: 20)
    took = kill_while_starting("never-answered")

    assert_operator took, :<, 10, "Thread#kill returned after the 5 s bound, not the 20 s delay"
    assert_equal 1, @proxy.open_uploads.size, "the upload S3 started could not be aborted without its id"
    assert_empty @proxy.aborted
    log = @log.string
    assert_match(/interrupted while starting a multipart upload to \S+never-answered/, log)
    assert_match(/may have started a multipart upload for the key never-answered/, log)
    assert_match(/AbortIncompleteMultipartUpload/, log)
  end

  def test_a_start_whose_answers_are_all_lost_says_an_upload_may_be_open
    @proxy.add(:reset_response, method: "POST", query: INITIATE, times: nil)
    error = assert_raises(HeapCapture::UploadError) do
      client(endpoint: @proxy.endpoint, max_attempts: 2).upload(@path, key: "answers-lost")
    end
    assert_match(/while starting a multipart upload/, error.message)
    assert_match(/may have started a multipart upload for the key answers-lost/, error.message)
    assert_match(/AbortIncompleteMultipartUpload/, error.message)
    assert_equal 2, @proxy.count("POST", INITIATE), "each attempt reached S3 (which started an upload each time)"
  end

  def test_a_start_refused_by_s3_says_nothing_about_open_uploads
    @proxy.add(:respond, method: "POST", query: INITIATE, status: 403,
                         body: HCTest::FaultProxy::ACCESS_DENIED)
    error = assert_raises(HeapCapture::UploadError) { @s3.upload(@path, key: "refused") }
    assert_equal "AccessDenied", error.code
    refute_match(/may have started/, error.message, "S3 answered: no upload was started")
  end
end
