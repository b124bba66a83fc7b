# frozen_string_literal: true

require "test_helper"
require "openssl"
require_relative "../support/sigv4_suite"

# The AWS SigV4 test suite's 28 S3-applicable cases through HeapCapture::SigV4.sign, one test per
# case: canonical request, string to sign and Authorization compared byte for byte.
class SigV4SuiteTest < HCTest::TestCase
  SUITE = HCTest::SigV4Suite

  def test_the_suite_has_28_cases_that_hold_for_s3
    assert_equal 28, SUITE.case_names.size, SUITE.case_names.inspect
    assert_equal 34, SUITE.case_names.size + SUITE::NOT_FOR_S3.size
  end

  SUITE.case_names.each do |name|
    define_method("test_suite_case_#{name.tr('-', '_')}") do
      c = SUITE.load(name)
      signed = HeapCapture::SigV4.sign(
        method: c.method, host: c.host, path: c.path, query: c.query, headers: c.headers,
        payload_sha256: OpenSSL::Digest::SHA256.hexdigest(c.body), region: "us-east-1", service: "service",
        access_key_id: SUITE::ACCESS_KEY_ID, secret_access_key: SUITE::SECRET_ACCESS_KEY,
        session_token: c.session_token, time: SUITE::TIME
      )
      assert_equal c.creq, signed[:canonical_request], "#{name}: canonical request"
      assert_equal c.sts, signed[:string_to_sign], "#{name}: string to sign"
      assert_equal c.authz, signed[:headers]["authorization"], "#{name}: Authorization"
      assert_equal c.authz[/Signature=(\h{64})\z/, 1], signed[:signature]
      assert_equal "20150830T123600Z", signed[:headers]["x-amz-date"]
      if c.session_token
        assert_equal c.session_token, signed[:headers]["x-amz-security-token"]
      else
        refute signed[:headers].key?("x-amz-security-token"), "#{name}: no token, no token header"
      end
    end
  end
end
