# frozen_string_literal: true

require "test_helper"

# Every message heapcapture raises starts with "heapcapture: " exactly once, whether Ruby or C
# raised it and whether the raiser wrote the prefix or not.
class ErrorsTest < HCTest::TestCase
  PREFIX = "heapcapture: "

  def test_our_errors_add_the_prefix_once
    [HeapCapture::Error, HeapCapture::ConfigurationError, HeapCapture::ConnectionError,
     HeapCapture::DumpError, HeapCapture::S3Error, HeapCapture::UploadError].each do |klass|
      assert_equal "#{PREFIX}storing the dump: disk full", klass.new("storing the dump: disk full").message
      assert_equal "#{PREFIX}already said", klass.new("#{PREFIX}already said").message
      assert_equal klass.name, klass.new.message, "no message: Ruby's default, the class name"
    end
  end

  def test_raise_with_a_bare_message_is_prefixed
    error = assert_raises(HeapCapture::DumpError) { raise HeapCapture::DumpError, "the child died" }
    assert_equal "#{PREFIX}the child died", error.message
  end

  def test_an_upload_error_is_an_s3_error
    assert_operator HeapCapture::UploadError, :<, HeapCapture::S3Error
    assert_operator HeapCapture::S3Error, :<, HeapCapture::Error
  end

  def test_upload_error_keeps_s3s_fields
    error = HeapCapture::UploadError.new("S3 refused", code: "AccessDenied", status: 403, request_id: "r1")
    assert_equal ["#{PREFIX}S3 refused", "AccessDenied", 403, "r1"],
                 [error.message, error.code, error.status, error.request_id]
  end

  def test_unprefixed_gives_the_bare_message_for_nesting_in_another
    assert_equal "the child died", HeapCapture::Util.unprefixed(HeapCapture::DumpError.new("the child died").message)
    assert_equal "plain", HeapCapture::Util.unprefixed("plain")
  end

  # C raises through hc_rb_raise: Ruby's own classes get the prefix from it, ours from initialize.
  def test_errors_raised_in_c_carry_the_prefix_once
    argument = assert_raises(ArgumentError) do # the binding itself, past the Ruby checks in front of it
      HeapCapture::SigV4.send(:_sign, "GET", "h", "/", [], "not pairs", "e3b0", "us-east-1", "s3", "AKID", "secret", nil, 0)
    end
    assert argument.message.start_with?(PREFIX), argument.message
    refute argument.message.start_with?(PREFIX * 2), argument.message
    config = assert_raises(HeapCapture::ConfigurationError) do
      HeapCapture::S3::Client.new(bucket: "b", region: "us-east-1", # s3.c refuses the one-letter name
                                  access_key_id: "AKID", secret_access_key: "secret")
    end
    assert config.message.start_with?(PREFIX), config.message
    refute config.message.start_with?(PREFIX * 2), config.message
  end
end
