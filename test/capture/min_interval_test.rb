# frozen_string_literal: true

require "test_helper"
require_relative "../support/listener_helpers"

# min_interval against a real PostgreSQL: a storm of signals does not become a stream of captures.
# 100 notifications, one every 100 ms, to a process armed with the default 60 s: one capture, and
# 99 error replies saying when the next is possible, logged on one line.
class MinIntervalTest < HCTest::TestCase
  include HCTest::ListenerHelpers

  def setup
    super
    HeapCapture.configure { |c| c.min_interval = 60 }
  end

  def teardown
    HeapCapture.configure { |c| c.min_interval = 0 }
    super
  end

  def test_a_hundred_notifications_in_ten_seconds_are_one_capture_and_ninety_nine_refusals
    record_captures
    arm("web.1")
    watched = watcher("heapcapture_reply")
    sender = PG.connect(@pg.url)
    got = []
    receive = ->(timeout) { got.concat(replies(watched, timeout: timeout)) }
    sender.exec("NOTIFY heapcapture_web_1, 'n0'")
    wait_for("the first capture's result") { receive.call(0.1).any? { |r| r["status"] == "ok" } }
    (1..99).each do |i| # the rest one every 100 ms: none arrives during a capture (that would be coalesced)
      sender.exec("NOTIFY heapcapture_web_1, 'n#{i}'")
      receive.call(0.1)
    end
    wait_for("200 replies (an ack and an answer each)") { receive.call(0.2).size >= 200 }
    answers = got.reject { |r| r["status"] == "ack" }
    assert_equal 100, answers.size
    assert_equal ["n0"], Array.new(@delivered.size) { @delivered.pop(true).first }, "one capture: the first"
    ok, *refused = answers
    assert_equal %w[ok n0], ok.values_at("status", "payload")
    assert_equal 99, refused.size
    refused.each_with_index do |reply, i|
      assert_equal ["error", "n#{i + 1}"], reply.values_at("status", "payload")
      assert_match(/\Aa capture ended \d+ s ago and captures are at least 60 s apart \(min_interval, HEAPCAPTURE_MIN_INTERVAL\): the next is possible in \d+ s, at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; nothing was started\z/, # rubocop:disable Layout/LineLength
                   reply["error"])
      assert_includes 45..60, reply["retry_in"], "when the next is possible (10 s of notifications)"
    end
    assert_equal 1, HeapCapture.status[:captures]
    assert_equal 1, log_text.scan(/refused the request from backend/).size, "refusals logged once a minute:\n#{log_text}"
  ensure
    sender&.close
  end
end
