# frozen_string_literal: true

require "test_helper"
require "pg"
require_relative "../support/bounded_command"
require_relative "../support/listener_helpers"

# Who may make an armed process capture, and who reads what, against a real PostgreSQL with a role
# that has nothing but CONNECT (LISTEN and NOTIFY need no privilege). Without a signal_key that role
# triggers captures (and the WARN line at arming says so); with one, its notifications are refused
# with the reason, and of a signed request's reply it reads neither the URL nor the location (sealed
# to the signaller's key; HeapCapture.signal opens them). Replayed, changed, stale and wrongly keyed
# signed notifications are each refused.
class SignedSignalTest < HCTest::TestCase
  include HCTest::ListenerHelpers

  KEY = "k" * 32 + "-signal-key-of-this-test"
  URL = "https://bucket.s3.example/dump.ndjson.gz?X-Amz-Signature=0123abcd"
  LOCATION = "s3://bucket/dump.ndjson.gz"

  def setup
    super
    @pg.psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'analyst') THEN " \
             "CREATE ROLE analyst LOGIN; END IF; END $$; REVOKE ALL ON DATABASE postgres FROM PUBLIC; " \
             "GRANT CONNECT ON DATABASE postgres TO analyst")
    @analyst = PG.connect(@pg.url(user: "analyst"))
    @analyst.exec("LISTEN heapcapture_reply")
    @analyst.exec("LISTEN heapcapture_web_1") # it sees the signed notifications too
  end

  def teardown
    @analyst&.close
    HeapCapture.configure { |c| c.signal_key = nil }
    super
  end

  def test_without_a_key_a_connect_only_role_triggers_and_reads_no_url
    capture_with_url
    arm("web.1")
    assert_includes log_text, "WARN -- : heapcapture: no signal_key (HEAPCAPTURE_SIGNAL_KEY): anyone who can connect " \
                              "to this database can make this process capture"
    @analyst.exec("NOTIFY heapcapture_web_1, 'from analyst'")
    assert_equal "from analyst", next_delivery.first
    result = analyst_replies.find { |r| r["status"] == "ok" } || flunk("no result reply")
    assert_equal LOCATION, result["location"], "an unsigned request's reply says where the dump is"
    refute result.key?("url"), "and never gives the presigned URL on the channel"
    refute_includes analyst_text, "X-Amz-Signature"
  end

  def test_with_a_key_unsigned_notifications_are_refused_and_signed_replies_are_sealed
    HeapCapture.configure { |c| c.signal_key = KEY }
    capture_with_url
    arm("web.1")
    refute_match(/no signal_key/, log_text)
    @analyst.exec("NOTIFY heapcapture_web_1, 'from analyst'")
    refused = analyst_replies.find { |r| r["status"] == "error" } || flunk("no refusal")
    assert refused["error"].start_with?("refused: unsigned: this process acts only on notifications signed with its " \
                                        "signal_key (HEAPCAPTURE_SIGNAL_KEY)"), refused["error"]
    assert_empty @delivered, "nothing was captured"

    results = HeapCapture.signal("signed", wait: 10)
    assert_equal 1, results.size
    assert_equal ["ok", URL, LOCATION], results.first.values_at("status", "url", "location"), "opened by the signaller"
    assert_equal "signed", next_delivery.first
    seen = analyst_text
    refute_includes seen, "X-Amz-Signature", "the analyst reads no URL"
    refute_includes seen, LOCATION, "nor where the dump is"
    sealed = analyst_replies.find { |r| r["status"] == "ok" } || flunk("the analyst saw no result at all")
    assert_kind_of String, sealed["sealed"]
  end

  def test_replayed_changed_stale_and_wrongly_keyed_signed_notifications_are_refused
    HeapCapture.configure { |c| c.signal_key = KEY }
    capture_with_url
    arm("web.1")
    HeapCapture.signal("first", wait: 10)
    assert_equal "first", next_delivery.first
    signed = analyst_notes.find { |channel, _, _| channel == "heapcapture_web_1" }&.last || flunk("no signed notification seen")
    changed = JSON.parse(signed).merge("payload" => "changed").to_json
    stale = HeapCapture::Wire.signed_text("stale", nil, channel: "heapcapture_web_1", key: KEY, time: Time.now.to_i - 400)
    wrong = HeapCapture::Wire.signed_text("wrong", nil, channel: "heapcapture_web_1", key: "w" * 32)
    other_channel = HeapCapture::Wire.signed_text("elsewhere", nil, channel: "heapcapture_web_2", key: KEY)
    expected = { signed => /\Arefused: replayed: this signed notification was received before/,
                 changed => /\Arefused: bad signature: not signed with this process's signal_key, or changed on the way/,
                 stale => /\Arefused: stale: signed 40\d s ago; a signed notification is good for 300 s/,
                 wrong => /\Arefused: bad signature/, other_channel => /\Arefused: bad signature/ }
    expected.each do |text, error|
      @analyst.exec_params("SELECT pg_notify('heapcapture_web_1', $1)", [text])
      refusal = analyst_replies.find { |r| r["status"] == "error" } || flunk("no refusal for #{text[0, 80]}")
      assert_match error, refusal["error"]
    end
    assert_empty @delivered, "none of them captured"
    assert_equal 1, HeapCapture.status[:captures]
  end

  def test_the_cli_signs_with_the_key_opens_the_sealed_location_and_without_the_key_is_refused
    env = { "DATABASE_URL" => @pg.url, "HEAPCAPTURE_SIGNAL_KEY" => KEY }
    pid, line = HCTest.spawn_armed_process(env, dyno: "web.1", fake_capture: true, linger: 60, connect_timeout: 10)
    (@children ||= []) << pid
    assert_equal "listening\n", line
    out, err, status = heapcapture_cli(env, "signal", "cli-signed", "--wait", "20")
    assert status.success?, out + err
    assert_match(%r{\Aweb\.1 pid #{pid}: ok file:///tmp/cli-signed$}, out, "the location, opened by the CLI")
    refute_includes analyst_text, "file:///tmp/cli-signed", "the analyst does not read it"

    out, err, status = heapcapture_cli(env.except("HEAPCAPTURE_SIGNAL_KEY"), "signal", "unsigned", "--wait", "5")
    refute status.success?, out + err
    assert_includes out, "refused: unsigned"
  end

  private

  # Bounded: the command waits up to 20 s for replies.
  def heapcapture_cli(env, *args)
    HCTest::BoundedCommand.run(env, RbConfig.ruby, "-I#{ROOT}/lib", "#{ROOT}/exe/heapcapture", *args, timeout: 60)
  end

  # A capture that stores nowhere but answers as an S3 capture does: a presigned URL and a location.
  def capture_with_url
    delivered = @delivered
    HeapCapture::Listener.capture_hook = lambda do |payload|
      delivered << [payload, monotonic]
      { "status" => "ok", "location" => LOCATION, "url" => URL, "bytes" => 1 }
    end
  end

  # [channel, backend pid, text] of what the analyst's connection received within timeout.
  def analyst_notes(timeout: 1.5) = (@notes ||= []).concat(notifications(@analyst, timeout: timeout))

  def analyst_text = analyst_notes.map(&:last).join("\n")

  def analyst_replies
    replies = analyst_notes.select { |channel, _, _| channel == "heapcapture_reply" }.map { |_, _, text| JSON.parse(text) }
    @notes.clear
    replies
  end
end
