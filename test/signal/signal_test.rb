# frozen_string_literal: true

require "test_helper"
require_relative "../support/listener_helpers"

# HeapCapture.signal: what it sends, what it refuses, and what it collects with wait:.
class SignalTest < HCTest::TestCase
  include HCTest::ListenerHelpers

  def test_one_notification_per_selected_dyno_with_the_payload_as_is
    channels = %w[heapcapture_worker_1 heapcapture_worker_2 heapcapture_worker_3]
    conn = watcher(*channels)
    assert_equal channels, HeapCapture.signal("hello", process_type: "worker", dynos: 3)
    got = notifications(conn)
    assert_equal channels, got.map(&:first).sort
    assert_equal ["hello"], got.map(&:last).uniq
    assert_equal 1, got.map { |n| n[1] }.uniq.size, "sent from one connection (its pid is the request id)"
    assert_equal channels.first, HeapCapture.signal(process_type: "worker", dynos: 1).first, "payload defaults to go"
    assert_equal "go", notifications(conn).first.last
  end

  def test_bad_payloads_are_argument_errors_and_nothing_is_sent
    conn = watcher("heapcapture_web_1")
    {
      "a" * 8000 => /8000 bytes; PostgreSQL's NOTIFY takes at most 7999/,
      "é" * 4000 => /8000 bytes/,
      "\xff\xfe bad".dup.force_encoding("UTF-8") => /not valid UTF-8/,
      "\xC3\x28".b => /not valid UTF-8/,
      "nul\0byte" => /NUL byte/,
      nil => /must be a String/,
      :go => /must be a String/
    }.each do |payload, message|
      error = assert_raises(ArgumentError, payload.inspect[0, 40]) { HeapCapture.signal(payload) }
      assert_match message, error.message
    end
    assert_raises(ArgumentError) { HeapCapture.signal("go", process_type: "WEB") }
    assert_raises(ArgumentError) { HeapCapture.signal("go", dynos: -1) }
    assert_raises(ArgumentError) { HeapCapture.signal("go", wait: -1) }
    error = assert_raises(ArgumentError) { HeapCapture.signal("go", wait: "soon") }
    # One message, shown once by a console or rake: no second copy of it as the cause.
    assert_equal 'heapcapture: wait must be a number of seconds >= 0, got "soon"', error.message
    assert_nil error.cause
    assert_empty notifications(conn), "nothing may be sent for a refused signal"
    assert_empty heapcapture_backends("heapcapture signal"), "no connection was opened"
    assert_equal ["heapcapture_web_1"], HeapCapture.signal("x".encode("UTF-16LE")), "other encodings are converted"
    assert_equal "x", notifications(conn).first.last
  end

  # NaN passes `negative?`; as a timeout it became "no limit" and the call never returned.
  def test_a_wait_that_is_not_a_number_is_refused_instead_of_waiting_forever
    conn = watcher("heapcapture_web_1")
    outcome = nil
    thread = Thread.new do
      HeapCapture.signal("go", wait: Float::NAN)
      outcome = :returned
    rescue ArgumentError => e
      outcome = e
    end
    finished = thread.join(5)
    thread.kill.join(5) unless finished
    assert finished, "signal(wait: NaN) was still waiting after 5 s"
    assert_kind_of ArgumentError, outcome
    assert_match(/wait must be a number of seconds/, outcome.message)
    assert_empty notifications(conn), "nothing may be sent for a refused signal"
    connection = HeapCapture::Listener::Connection.new(@pg.url, nil, "heapcapture test", false)
    error = assert_raises(ArgumentError) { connection.connect(Float::NAN) }
    assert_match(/timeout must be a number of seconds, got NaN/, error.message)
  ensure
    connection&.close
  end

  def test_wait_returns_the_replies_of_two_armed_processes
    pids = [spawn_armed("web.1", dynos: 2), spawn_armed("web.2", dynos: 2)]
    started = monotonic
    results = HeapCapture.signal("both", dynos: 2, wait: 15)
    assert_operator monotonic - started, :<, 10, "returns once both replied, not at the timeout"
    assert_equal pids.sort, results.map { |r| r["pid"] }.sort, results.inspect
    assert_equal %w[heapcapture_web_1 heapcapture_web_2], results.map { |r| r["channel"] }.sort
    assert_equal %w[web.1 web.2], results.map { |r| r["dyno"] }.sort
    assert_equal ["ok"], results.map { |r| r["status"] }.uniq
    assert_equal ["file:///tmp/both"], results.map { |r| r["location"] }.uniq
  end

  def test_wait_with_no_armed_process_returns_an_empty_list_at_the_timeout
    started = monotonic
    assert_equal [], HeapCapture.signal("anyone?", wait: 0.5)
    elapsed = monotonic - started
    assert_operator elapsed, :>=, 0.5
    assert_operator elapsed, :<, 5
  end

  def test_replies_to_other_requests_are_not_collected
    record_captures(delay: 0.3)
    arm("web.1")
    noise = Thread.new do
      sender = PG.connect(@pg.url)
      3.times { |i| sender.exec_params("SELECT pg_notify('heapcapture_reply', $1)", [%({"status":"ok","request_id":#{i}})]) }
      sender.exec_params("SELECT pg_notify('heapcapture_reply', $1)", ["not json"])
      sender.close
    end
    results = HeapCapture.signal("mine", wait: 10)
    noise.join
    assert_equal 1, results.size, results.inspect
    assert_equal "mine", results.first["payload"]
  end

  def test_an_unreachable_database_is_a_connection_error_that_says_where
    HeapCapture.config.database_url = "postgres://postgres:hunter2@127.0.0.1:#{HCTest::Services.free_port}/postgres"
    error = assert_raises(HeapCapture::ConnectionError) { HeapCapture.signal("go") }
    assert_match(/connecting to PostgreSQL failed/, error.message)
    assert_match(/127\.0\.0\.1/, error.message)
    refute_match(/hunter2/, error.message)
  end
end
