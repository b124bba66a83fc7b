# frozen_string_literal: true

require "test_helper"
require_relative "../support/s3_helpers"
require "open3"

# HeapCapture::S3::Client against the real S3 test server; aws-sdk-s3 reads back what it stored.
class S3ClientTest < HCTest::TestCase
  include HCTest::S3Helpers

  # 0 bytes, 1 byte, exactly one part (one PUT), one byte over (two parts), three parts with a
  # short last one: each read back with the same SHA-256.
  def test_round_trips_at_the_part_boundaries
    s3 = client
    [[0, 1], [1, 1], [PART, 1], [PART + 1, 2], [2 * PART + 12_345, 3]].each do |size, parts|
      path = random_file(size)
      key = unique_key("size-#{size}")
      result = s3.upload(path, key: key)
      assert_equal({ "key" => key, "bytes" => size, "parts" => parts }, result.except("etag"), "size #{size}")
      assert_match(parts > 1 ? /\A"\h{32}-#{parts}"\z/ : /\A"\h{32}"\z/, result["etag"], "size #{size}")
      assert_equal sha256_file(path), stored_sha256(key), "object of #{size} bytes read back"
      head = aws.head_object(bucket: bucket, key: key)
      assert_equal size, head.content_length
      assert_equal head.etag, result["etag"], "the ETag returned is the one S3 stored (size #{size})"
    end
  end

  def test_a_200_mb_random_file_round_trips_while_another_thread_keeps_ticking
    path = random_file(200 * MIB, name: "big")
    key = unique_key("200mb")
    ticks = []
    ticker = Thread.new do
      loop do
        ticks << Process.clock_gettime(Process::CLOCK_MONOTONIC)
        sleep 0.01
      end
    end
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    result = client(part_size: 8 * MIB).upload(path, key: key)
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    ticker.kill.join
    assert_equal 25, result["parts"]
    assert_equal 200 * MIB, result["bytes"]
    gaps = ticks.each_cons(2).map { |a, b| b - a }
    # The GVL is free during the transfer: a 10 ms ticker never waits long (generous bound).
    assert_operator gaps.max, :<, 0.5, "longest pause of the ticking thread during the upload"
    assert_operator ticks.size, :>=, (elapsed / 0.05).floor, "ticks during #{elapsed.round(2)} s"
    assert_equal sha256_file(path), stored_sha256(key)
  ensure
    aws.delete_object(bucket: bucket, key: key) if key
  end

  def test_keys_with_spaces_unicode_plus_and_ampersand
    s3 = client
    path = random_file(1000)
    ["dumps/with space.gz", "dumps/unicodé ✓ 日本.gz", "dumps/a+b.gz", "dumps/a&b=c?d#e.gz", "dumps/~odd'(chars)!*"].each do |key|
      s3.upload(path, key: key)
      assert_equal sha256_file(path), stored_sha256(key), key
      out = File.join(@tmpdir, "down")
      assert_equal 1000, s3.download(key, to: out)
      assert_equal sha256_file(path), sha256_file(out), key
    end
  end

  def test_list_download_delete_and_presigned_url
    s3 = client
    prefix = unique_key("list") + "/"
    paths = { "#{prefix}a.gz" => random_file(10, name: "a"), "#{prefix}b c+é.gz" => random_file(PART + 7, name: "b") }
    paths.each { |key, path| s3.upload(path, key: key) }
    s3.upload(random_file(3, name: "other"), key: unique_key("elsewhere"))

    listed = s3.list(prefix: prefix)
    assert_equal paths.keys.sort, listed.map { |o| o["key"] }
    assert_equal [10, PART + 7], listed.map { |o| o["size"] }
    listed.each { |o| assert_in_delta Time.now, o["last_modified"], 120 }
    assert_equal Encoding::UTF_8, listed.last["key"].encoding

    out = File.join(@tmpdir, "downloaded")
    assert_equal PART + 7, s3.download("#{prefix}b c+é.gz", to: Pathname(out))
    assert_equal sha256_file(paths["#{prefix}b c+é.gz"]), sha256_file(out)
    assert_equal [File.basename(out)], Dir.children(@tmpdir).grep(/downloaded/), "no temporary file left"

    url = s3.presigned_url("#{prefix}b c+é.gz", expires_in: 600)
    assert_includes url, "X-Amz-Expires=600"
    fetched = File.join(@tmpdir, "fetched")
    _out, err, status = Open3.capture3("curl", "-sS", "--fail", "--max-time", "30", "-o", fetched, url)
    assert status.success?, "curl fetched the presigned URL: #{err}"
    assert_equal sha256_file(out), sha256_file(fetched)

    assert_nil s3.delete("#{prefix}a.gz")
    assert_equal ["#{prefix}b c+é.gz"], s3.list(prefix: prefix).map { |o| o["key"] }
    s3.delete("#{prefix}b c+é.gz")
    assert_empty s3.list(prefix: prefix)
  end

  def test_download_of_a_missing_key_raises_and_leaves_no_file
    out = File.join(@tmpdir, "nothing")
    error = assert_raises(HeapCapture::S3Error) { client.download(unique_key("missing"), to: out) }
    refute_kind_of HeapCapture::UploadError, error, "a download is not an upload"
    assert_equal "NoSuchKey", error.code
    assert_equal 404, error.status
    assert_empty Dir.children(@tmpdir)
  end

  def test_wrong_secret_is_signature_does_not_match_403
    [10, PART + 1].each do |size|
      path = random_file(size)
      error = assert_raises(HeapCapture::UploadError) do
        client(secret_access_key: "not-the-secret").upload(path, key: unique_key("wrong-secret"))
      end
      assert_equal "SignatureDoesNotMatch", error.code
      assert_equal 403, error.status
      assert_match(/HTTP 403 SignatureDoesNotMatch/, error.message)
      refute_match(/gave up after/, error.message, "a 403 is not retried")
    end
  end

  def test_a_bucket_that_does_not_exist_is_no_such_bucket_404
    s3 = HeapCapture::S3::Client.new(bucket: "no-such-bucket-here", region: "us-east-1",
                                     endpoint: ENV.fetch("AWS_ENDPOINT_URL_S3"), access_key_id: ENV.fetch("AWS_ACCESS_KEY_ID"),
                                     secret_access_key: ENV.fetch("AWS_SECRET_ACCESS_KEY"), part_size: PART)
    [10, PART + 1].each do |size|
      error = assert_raises(HeapCapture::UploadError) { s3.upload(random_file(size), key: "k") }
      assert_equal "NoSuchBucket", error.code
      assert_equal 404, error.status
      assert_includes error.message, "/no-such-bucket-here/k"
    end
    listing = assert_raises(HeapCapture::S3Error) { s3.list }
    assert_equal ["NoSuchBucket", HeapCapture::S3Error], [listing.code, listing.class]
  end

  def test_an_endpoint_that_refuses_connections
    port = HCTest::Services.free_port
    s3 = client(endpoint: "http://127.0.0.1:#{port}", max_attempts: 2)
    error = assert_raises(HeapCapture::UploadError) { s3.upload(random_file(PART + 1), key: "dumps/k") }
    assert_match(/Connection refused/, error.message)
    assert_includes error.message, "http://127.0.0.1:#{port}/#{bucket}/dumps/k"
    assert_includes error.message, "gave up after 2 attempts"
    assert_nil error.status
    assert_nil error.code
  end

  def test_missing_and_unreadable_files_raise_naming_the_path_before_anything_is_sent
    s3 = client(endpoint: "http://127.0.0.1:1") # nothing is sent: a request would fail differently
    missing = File.join(@tmpdir, "missing.gz")
    error = assert_raises(HeapCapture::UploadError) { s3.upload(missing, key: "k") }
    assert_equal "heapcapture: cannot upload #{missing}: opening it failed: No such file or directory", error.message
    error = assert_raises(HeapCapture::UploadError) { s3.upload(@tmpdir, key: "k") }
    assert_includes error.message, "it is not a regular file"
    return if Process.uid.zero? # root reads any file

    unreadable = random_file(5)
    File.chmod(0o000, unreadable)
    error = assert_raises(HeapCapture::UploadError) { s3.upload(unreadable, key: "k") }
    assert_match(/Permission denied/, error.message)
  end

  def test_bad_arguments_are_clear_errors
    assert_raises(ArgumentError) { client.upload(random_file(1), key: "") }
    assert_raises(TypeError) { client.upload(42, key: "k") }
    assert_raises(ArgumentError) { client.presigned_url("k", expires_in: 0) }
    error = assert_raises(HeapCapture::ConfigurationError) { client(part_size: 1024) }
    assert_includes error.message, "5 MiB"
    error = assert_raises(HeapCapture::ConfigurationError) { client(endpoint: "ftp://x") }
    assert_includes error.message, "ftp://x"
    error = assert_raises(HeapCapture::ConfigurationError) do
      HeapCapture::S3::Client.new(bucket: "b-b-b", region: "us-east-1", access_key_id: nil, secret_access_key: "x")
    end
    assert_includes error.message, "AWS_ACCESS_KEY_ID"
    # Virtual-hosted addressing with an IP endpoint could only fail later ("Could not resolve host:
    # bucket.127.0.0.1"): refused when the client is made.
    error = assert_raises(HeapCapture::ConfigurationError) { client(path_style: false) }
    assert_match(/\Aheapcapture: path_style: false puts the bucket in the host name, and the endpoint \S+ is an IP address/,
                 error.message)
  end

  def test_from_config_and_addressing
    s3 = HeapCapture::S3::Client.from_config(bucket: bucket)
    assert_equal "#{ENV.fetch('AWS_ENDPOINT_URL_S3')}/#{bucket}", s3.base_url
    assert_equal 8 * MIB, s3.part_size
    refute_includes s3.inspect, ENV.fetch("AWS_SECRET_ACCESS_KEY") + ">"
    aws_style = HeapCapture::S3::Client.new(bucket: "my-dumps", region: "eu-west-1", access_key_id: "A",
                                            secret_access_key: "B")
    assert_equal "https://my-dumps.s3.eu-west-1.amazonaws.com", aws_style.base_url
    dotted = HeapCapture::S3::Client.new(bucket: "my.dumps", region: "eu-west-1", access_key_id: "A",
                                         secret_access_key: "B")
    assert_equal "https://s3.eu-west-1.amazonaws.com/my.dumps", dotted.base_url
    url = aws_style.presigned_url("dumps/a b.gz")
    assert_match %r{\Ahttps://my-dumps\.s3\.eu-west-1\.amazonaws\.com/dumps/a%20b\.gz\?X-Amz-Algorithm=}, url
  end

  def test_session_token_is_sent_and_signed
    # The test server ignores tokens; the presigned URL shows the token is part of what is signed.
    s3 = client(session_token: "FQoGZXIvYXdzEXAMPLE")
    assert_includes s3.presigned_url("k"), "X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLE"
    path = random_file(10)
    s3.upload(path, key: "token-test")
    assert_equal sha256_file(path), stored_sha256("token-test")
  end

  def test_a_client_keeps_working_across_fork_in_parent_and_child
    s3 = client
    path = random_file(PART + 10)
    s3.upload(path, key: "fork/parent-before") # connections are open now
    pid = fork do
      s3.upload(path, key: "fork/child")
      exit!(s3.list(prefix: "fork/").size == 2 ? 0 : 1)
    end
    _, status = Process.wait2(pid)
    assert status.success?, "the child uploaded with its own connections"
    s3.upload(path, key: "fork/parent-after")
    assert_equal %w[fork/child fork/parent-after fork/parent-before], s3.list(prefix: "fork/").map { |o| o["key"] }
    %w[child parent-after parent-before].each { |name| assert_equal sha256_file(path), stored_sha256("fork/#{name}") }
  end
end
