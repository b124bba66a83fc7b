# frozen_string_literal: true

require "test_helper"
require "pp" # rubocop:disable Lint/RedundantRequireStatement -- pretty_inspect is not loaded until pp is

# Credentials never reach what a person (or an error tracker) is shown: inspect, pp.
class SecretsTest < HCTest::TestCase
  SECRET = "s3cretpw"

  def test_a_listener_never_shows_its_database_password
    listener = HeapCapture::Listener.new(database_url: "postgres://app:#{SECRET}@127.0.0.1:1/db", dyno: "web.1",
                                         channel: "heapcapture_web_1")
    refute_includes listener.inspect, SECRET
    refute_includes listener.pretty_inspect, SECRET
    assert_includes listener.inspect, "heapcapture_web_1"
    assert_includes listener.inspect, "postgres://app:***@127.0.0.1:1/db"
  end
end
