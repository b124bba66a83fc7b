# frozen_string_literal: true

require "test_helper"
require "openssl"

# HeapCapture::SigV4's Ruby API: argument forms, known answers from the S3 documentation, and bad
# input (the right class, a message naming the argument, never a crash).
class SigV4Test < HCTest::TestCase
  SigV4 = HeapCapture::SigV4
  EMPTY_SHA256 = OpenSSL::Digest.hexdigest("SHA256", "")
  DOC_TIME = Time.utc(2013, 5, 24)

  # The S3 documentation's examples: GET /test.txt from examplebucket, 2013-05-24.
  def doc_sign(**overrides)
    SigV4.sign(**{ method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt",
                   headers: { "Range" => "bytes=0-9", "x-amz-content-sha256" => EMPTY_SHA256 },
                   payload_sha256: EMPTY_SHA256, region: "us-east-1", service: "s3",
                   access_key_id: "AKIAIOSFODNN7EXAMPLE",
                   secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", time: DOC_TIME }.merge(overrides))
  end

  def doc_presign(**overrides)
    SigV4.presign(**{ method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt",
                      region: "us-east-1", access_key_id: "AKIAIOSFODNN7EXAMPLE",
                      secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", time: DOC_TIME,
                      expires_in: 86_400 }.merge(overrides))
  end

  def test_sign_matches_the_s3_documentation_example
    signed = doc_sign
    assert_equal "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", signed[:signature]
    assert_equal({ "authorization" => "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/" \
                                      "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, " \
                                      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
                   "x-amz-date" => "20130524T000000Z" }, signed[:headers])
    assert_equal %i[canonical_request string_to_sign signature headers].sort, signed.keys.sort
  end

  def test_presign_matches_the_s3_documentation_example
    signed = doc_presign
    assert_equal "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404", signed[:signature]
    assert_equal [%w[X-Amz-Algorithm AWS4-HMAC-SHA256],
                  ["X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"],
                  %w[X-Amz-Date 20130524T000000Z], %w[X-Amz-Expires 86400],
                  %w[X-Amz-SignedHeaders host], ["X-Amz-Signature", signed[:signature]]], signed[:query]
    assert signed[:query_string].end_with?("&X-Amz-Signature=#{signed[:signature]}")
    assert_includes signed[:canonical_request], "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
  end

  def test_presign_signs_the_session_token_and_the_callers_query
    signed = doc_presign(query: [["response-content-disposition", "attachment; filename=\"a b\""]],
                         session_token: "tok/en+=")
    assert_includes signed[:query], ["X-Amz-Security-Token", "tok/en+="]
    assert_includes signed[:query], ["response-content-disposition", "attachment; filename=\"a b\""]
    assert_includes signed[:canonical_request], "X-Amz-Security-Token=tok%2Fen%2B%3D"
    assert_equal "X-Amz-Signature", signed[:query].last[0]
  end

  def test_time_in_any_zone_and_integer_seconds_sign_alike
    utc = doc_sign[:signature]
    assert_equal utc, doc_sign(time: DOC_TIME.getlocal("-08:00"))[:signature]
    assert_equal utc, doc_sign(time: DOC_TIME.to_i)[:signature]
    assert_equal utc, doc_sign(time: DOC_TIME + 0.75)[:signature], "fractions of a second are dropped"
  end

  def test_headers_as_hash_with_arrays_or_as_pairs_sign_alike
    pairs = [["X-Amz-Meta-A", " one  two "], %w[x-amz-meta-a three], ["x-amz-meta-n", 42]]
    hash = { "X-Amz-Meta-A" => [" one  two ", "three"], "x-amz-meta-n" => 42 }
    from_pairs = doc_sign(headers: pairs)
    assert_equal from_pairs, doc_sign(headers: hash)
    assert_includes from_pairs[:canonical_request], "\nx-amz-meta-a:one two,three\nx-amz-meta-n:42\n"
  end

  def test_query_sorts_by_encoded_name_then_value_with_empty_values_first
    signed = doc_sign(query: [%w[b 2], %w[a x], ["a", nil], ["a", ""], ["k y", "v/+"]])
    assert_equal "a=&a=&a=x&b=2&k%20y=v%2F%2B", signed[:canonical_request].lines[2].chomp
    assert_equal signed, doc_sign(query: { "b" => "2", "a" => ["x", nil, ""], "k y" => "v/+" })
  end

  def test_path_is_encoded_once_without_normalisation
    signed = doc_sign(path: "/bucket//a/./b/../my key+%2F~ü.gz")
    assert_equal "/bucket//a/./b/../my%20key%2B%252F~%C3%BC.gz", signed[:canonical_request].lines[1].chomp
  end

  def test_session_token_is_signed_and_returned
    signed = doc_sign(session_token: "FQoGZXIvYXdzE")
    assert_equal "FQoGZXIvYXdzE", signed[:headers]["x-amz-security-token"]
    assert_includes signed[:canonical_request], "\nx-amz-security-token:FQoGZXIvYXdzE\n"
    refute doc_sign(session_token: "")[:headers].key?("x-amz-security-token"), "an empty token is no token"
  end

  def test_a_large_request_signs
    signed = doc_sign(path: "/" + ("k" * 1_000_000), headers: { "x-amz-meta-big" => "v " * 100_000 },
                      query: Array.new(2000) { |i| ["p#{i}", "v" * 100] })
    assert_match(/\A\h{64}\z/, signed[:signature])
  end

  def assert_bad(klass, words, &block)
    error = assert_raises(klass, &block)
    Array(words).each { |w| assert_includes error.message, w }
    error
  end

  def test_missing_or_blank_arguments_are_named
    assert_bad(ArgumentError, "host") { SigV4.sign(**doc_args.except(:host)) }
    assert_bad(ArgumentError, "host") { doc_sign(host: "") }
    assert_bad(ArgumentError, "method") { doc_sign(method: " ") }
    assert_bad(ArgumentError, "path") { doc_sign(path: nil) }
    assert_bad(ArgumentError, "path") { doc_sign(path: "relative/key") }
    assert_bad(ArgumentError, "region") { doc_sign(region: "") }
    assert_bad(ArgumentError, "service") { doc_sign(service: nil) }
    assert_bad(ArgumentError, "payload_sha256") { doc_sign(payload_sha256: "") }
    assert_bad(ArgumentError, "payload_sha256") { doc_sign(payload_sha256: "ABC") }
    assert_bad(ArgumentError, "time") { SigV4.sign(**doc_args.except(:time)) }
  end

  def doc_args
    { method: "GET", host: "h", path: "/", payload_sha256: EMPTY_SHA256, region: "us-east-1", service: "s3",
      access_key_id: "AKID", secret_access_key: "secret", time: DOC_TIME }
  end

  def test_blank_or_malformed_credentials_are_configuration_errors
    assert_bad(HeapCapture::ConfigurationError, %w[access_key_id AWS_ACCESS_KEY_ID]) { doc_sign(access_key_id: nil) }
    assert_bad(HeapCapture::ConfigurationError, "access_key_id") { doc_sign(access_key_id: "  ") }
    assert_bad(HeapCapture::ConfigurationError, "access_key_id") { doc_sign(access_key_id: "AK ID") }
    assert_bad(HeapCapture::ConfigurationError, %w[secret_access_key AWS_SECRET_ACCESS_KEY]) do
      doc_sign(secret_access_key: "")
    end
    assert_bad(HeapCapture::ConfigurationError, "secret_access_key") { doc_presign(secret_access_key: 123) }
    assert_bad(HeapCapture::ConfigurationError, "session_token") { doc_sign(session_token: "to\nken") }
    assert_bad(HeapCapture::ConfigurationError, "session_token") { doc_sign(session_token: :tok) }
    assert_bad(HeapCapture::ConfigurationError, "secret_access_key") { doc_sign(secret_access_key: "a\0b") }
  end

  def test_bad_time_is_an_argument_error
    assert_bad(ArgumentError, "time") { doc_sign(time: "2013-05-24") }
    assert_bad(ArgumentError, "time") { doc_sign(time: 1.5) }
    assert_bad(ArgumentError, "time") { doc_sign(time: -1) }
    assert_bad(ArgumentError, "time") { doc_sign(time: 2**70) }
    assert_bad(ArgumentError, "time") { doc_sign(time: Time.utc(10_000)) }
    assert_bad(ArgumentError, "time") { doc_presign(time: nil) }
  end

  def test_bad_headers_are_named
    assert_bad(ArgumentError, "header") { doc_sign(headers: { "my header" => "v" }) }
    assert_bad(ArgumentError, "header") { doc_sign(headers: { "my:header" => "v" }) }
    assert_bad(ArgumentError, "header") { doc_sign(headers: { "" => "v" }) }
    assert_bad(ArgumentError, "x-a") { doc_sign(headers: { "x-a" => "line\r\nInjected: yes" }) }
    assert_bad(ArgumentError, "x-a") { doc_sign(headers: { "x-a" => "bell\a" }) }
    assert_bad(ArgumentError, "x-a") { doc_sign(headers: { "x-a" => nil }) }
    assert_bad(ArgumentError, "x-a") { doc_sign(headers: { "x-a" => Object.new }) }
    assert_bad(ArgumentError, "host") { doc_sign(headers: { "Host" => "elsewhere" }) }
    assert_bad(ArgumentError, "x-amz-date") { doc_sign(headers: { "X-Amz-Date" => "20200101T000000Z" }) }
    assert_bad(ArgumentError, "headers") { doc_sign(headers: "x-a: 1") }
    assert_bad(ArgumentError, "headers[0]") { doc_sign(headers: [["x-a"]]) }
    assert_bad(ArgumentError, "headers[1]") { doc_sign(headers: [%w[x-a 1], "x-b"]) }
  end

  def test_bad_query_and_presign_arguments_are_named
    assert_bad(ArgumentError, "query") { doc_sign(query: "a=b") }
    assert_bad(ArgumentError, "query[0]") { doc_sign(query: [%w[a b c]]) }
    assert_bad(ArgumentError, "query") { doc_sign(query: [[nil, "v"]]) }
    assert_bad(ArgumentError, "query") { doc_sign(query: [["a", Object.new]]) }
    assert_bad(ArgumentError, "expires_in") { doc_presign(expires_in: 0) }
    assert_bad(ArgumentError, "expires_in") { doc_presign(expires_in: 604_801) }
    assert_bad(ArgumentError, "expires_in") { doc_presign(expires_in: "60") }
    assert_bad(ArgumentError, "X-Amz-Signature") { doc_presign(query: [%w[X-Amz-Signature x]]) }
  end

  def test_nul_bytes_and_odd_values_raise_instead_of_crashing
    assert_bad(ArgumentError, "path") { doc_sign(path: "/a\0b") }
    assert_bad(ArgumentError, "host") { doc_sign(host: "h\0") }
    assert_bad(ArgumentError, "query") { doc_sign(query: [["a\0", "b"]]) }
    assert_bad(ArgumentError, "headers") { doc_sign(headers: { "x-a" => "v\0" }) }
    assert_bad(ArgumentError, "host") { doc_sign(host: 12) }
    assert_bad(ArgumentError, "path") { doc_sign(path: ["/a"]) }
    assert_bad(ArgumentError, "method") { doc_sign(method: Object.new) }
    assert_equal doc_sign[:signature], doc_sign(method: :get)[:signature], "a Symbol method is upper-cased"
    assert_equal doc_sign[:signature], doc_sign(path: "/test.txt".encode("UTF-16LE"))[:signature]
  end

  def test_the_private_c_methods_check_types_too
    assert_bad(ArgumentError, "query") do
      SigV4.send(:_sign, "GET", "h", "/", :nope, [], EMPTY_SHA256, "r", "s", "a", "b", nil, 0)
    end
    assert_bad(ArgumentError, "headers") do
      SigV4.send(:_sign, "GET", "h", "/", [], [[1, 2]], EMPTY_SHA256, "r", "s", "a", "b", nil, 0)
    end
    assert_bad(ArgumentError, "time") do
      SigV4.send(:_presign, "GET", "h", "/", [], "r", "s", "a", "b", nil, Time.now, 60)
    end
    assert_bad(ArgumentError, "session_token") do
      SigV4.send(:_sign, "GET", "h", "/", [], [], EMPTY_SHA256, "r", "s", "a", "b", 5, 0)
    end
    assert_raises(NoMethodError) { SigV4._sign }
  end
end
