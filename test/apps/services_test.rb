# frozen_string_literal: true

require "test_helper"
require "net/http"
require "openssl"

# Proves the real services the suite depends on answer, through the same environment users set.
class ServicesTest < HCTest::TestCase
  def setup
    HCTest::Services.start!
  end

  def test_postgres_answers_a_query_at_database_url
    assert_match %r{\Apostgres://postgres@127\.0\.0\.1:\d+/postgres\z}, ENV.fetch("DATABASE_URL")
    assert_equal "42", HCTest::Services.postgres.psql("SELECT 40 + 2")
    assert_match(/PostgreSQL \d+/, HCTest::Services.postgres.psql("SELECT version()"))
  end

  def test_s3_server_accepts_a_signed_request_and_rejects_a_bad_signature
    ok = signed_list_request(ENV.fetch("AWS_SECRET_ACCESS_KEY"))
    assert_equal "200", ok.code, ok.body
    assert_includes ok.body, "<Name>#{HCTest::Services::BUCKET}</Name>"

    bad = signed_list_request("not-the-secret")
    assert_equal "403", bad.code, bad.body
    assert_includes bad.body, "SignatureDoesNotMatch"
  end

  def test_redis_answers_at_redis_url_and_keeps_nothing_on_disk
    redis = HCTest::Services.redis
    assert_equal "redis://127.0.0.1:#{redis.port}/0", ENV.fetch("REDIS_URL")
    require "redis"
    client = ::Redis.new(url: ENV.fetch("REDIS_URL"))
    assert_equal "PONG", client.ping
    assert_equal({ "save" => "" }, client.config(:get, "save"))
    assert_equal({ "appendonly" => "no" }, client.config(:get, "appendonly"))
  ensure
    client&.close
  end

  private

  # A ListObjectsV2 on the test bucket, signed by our own signer.
  def signed_list_request(secret)
    uri = URI("#{ENV.fetch('AWS_ENDPOINT_URL_S3')}/#{HCTest::Services::BUCKET}?list-type=2")
    empty_sha = OpenSSL::Digest.hexdigest("SHA256", "")
    signed = HeapCapture::SigV4.sign(
      method: "GET", host: "#{uri.host}:#{uri.port}", path: uri.path, query: [%w[list-type 2]],
      headers: { "x-amz-content-sha256" => empty_sha }, payload_sha256: empty_sha,
      region: ENV.fetch("AWS_REGION"), service: "s3", access_key_id: ENV.fetch("AWS_ACCESS_KEY_ID"),
      secret_access_key: secret, time: Time.now.utc
    )
    request = Net::HTTP::Get.new(uri)
    request["x-amz-content-sha256"] = empty_sha
    signed[:headers].each { |name, value| request[name] = value }
    Net::HTTP.start(uri.host, uri.port, open_timeout: 5, read_timeout: 10) { |http| http.request(request) }
  end
end
