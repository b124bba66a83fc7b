# frozen_string_literal: true

require "test_helper"
require "minitest/mock"
require_relative "../support/listener_helpers"

# The armed listener against a real PostgreSQL: delivery, coalescing, acknowledgements and
# replies, losing the connection, and payloads that must arrive byte for byte.
class ListenerTest < HCTest::TestCase
  include HCTest::ListenerHelpers

  def test_a_notify_reaches_the_hook_within_a_second
    record_captures
    arm("web.1")
    sender = PG.connect(@pg.url)
    3.times do |i|
      sent = monotonic
      sender.exec("NOTIFY heapcapture_web_1, 'n#{i}'")
      payload, at = next_delivery
      assert_equal "n#{i}", payload
      assert_operator at - sent, :<, 1.0, "NOTIFY to hook"
      wait_for("the capture to end") { !HeapCapture.status[:capturing] }
    end
  ensure
    sender&.close
  end

  def test_a_plain_psql_notify_triggers_a_capture
    record_captures
    arm("web.1")
    @pg.psql("NOTIFY heapcapture_web_1, 'from psql'")
    assert_equal "from psql", next_delivery.first
  end

  def test_the_listener_acknowledges_then_replies_with_the_result
    record_captures
    arm("web.1")
    watched = watcher("heapcapture_reply")
    sender = PG.connect(@pg.url)
    sender.exec_params("SELECT pg_notify($1, $2)", %w[heapcapture_web_1 go])
    request_id = sender.backend_pid
    sender.close
    got = []
    wait_for("the ack and the result") do
      got.concat(replies(watched, timeout: 0.2))
      got.size >= 2
    end
    ack, result = got
    assert_equal({ "status" => "ack", "dyno" => "web.1", "pid" => Process.pid, "request_id" => request_id,
                   "channel" => "heapcapture_web_1" }, ack)
    assert_equal "ok", result["status"]
    assert_equal "go", result["payload"]
    assert_equal request_id, result["request_id"]
    assert_equal ["web.1", Process.pid, "heapcapture_web_1"], result.values_at("dyno", "pid", "channel")
  end

  def test_a_hundred_notifications_at_once_are_each_captured_or_coalesced
    record_captures(delay: 0.3)
    arm("web.1")
    sql = (1..100).map { |i| "NOTIFY heapcapture_web_1, 'n#{i}';" }.join # one transaction: all at once
    @pg.psql(sql)
    wait_for("100 notifications accounted for") do
      status = HeapCapture.status
      status[:captures] + status[:coalesced] == 100 && !status[:capturing]
    end
    status = HeapCapture.status
    delivered = []
    delivered << @delivered.pop(true)[0] until @delivered.empty?
    assert_equal status[:captures], delivered.size
    assert_equal "n1", delivered.first, "the first notification starts a capture"
    assert_operator status[:coalesced], :>=, 1, "notifications during a capture are coalesced"
    assert_equal status[:coalesced], log_text.scan(/coalesced a notification on heapcapture_web_1/).size,
                 "each coalesced notification is logged"
    assert_equal status[:captures], log_text.scan(/: capturing$/).size
  end

  def test_every_coalesced_sender_gets_the_result_of_the_capture_it_joined
    record_captures(delay: 0.5)
    arm("web.1")
    first = Thread.new { HeapCapture.signal("first", wait: 10) }
    assert_equal "first", next_delivery.first
    second = HeapCapture.signal("second", wait: 10)
    assert_equal 1, second.size
    assert_equal "first", second.first["payload"], "the second sender gets the running capture's result"
    assert_equal "first", first.value.first["payload"]
    refute_equal first.value.first["request_id"], second.first["request_id"]
  end

  def test_a_failing_capture_becomes_an_error_reply_and_the_listener_goes_on
    calls = 0
    HeapCapture::Listener.capture_hook = lambda do |payload|
      calls += 1
      raise "disk full" if payload == "boom"
      return :not_a_hash if payload == "odd"
      return { "status" => "ok", "pause_ms" => Float::NAN, "when" => Time.at(0).utc } if payload == "nan"

      { "status" => "ok", "location" => "x" }
    end
    results = []
    ENV["DYNO"] = "web.1"
    HeapCapture.exclusive do |result|
      results << result
      raise "the block fails too"
    end
    wait_for("connected") { HeapCapture.status[:connected] }
    boom = HeapCapture.signal("boom", wait: 10)
    assert_equal [["error", "RuntimeError: disk full"]], boom.map { |r| r.values_at("status", "error") }
    odd = HeapCapture.signal("odd", wait: 10)
    assert_match(/not a result Hash/, odd.first["error"])
    nan = HeapCapture.signal("nan", wait: 10)
    assert_equal ["NaN", "1970-01-01 00:00:00 UTC"], nan.first.values_at("pause_ms", "when"), "odd values as text"
    ok = HeapCapture.signal("fine", wait: 10)
    assert_equal "ok", ok.first["status"]
    assert_equal 4, calls
    wait_for("the block to see four results") { results.size == 4 }
    assert_equal %w[error error ok ok], results.map { |r| r["status"] }
    assert_match(/the block given to HeapCapture.exclusive raised RuntimeError/, log_text)
  end

  def test_a_capture_thread_that_cannot_start_is_an_error_reply_and_the_next_signal_captures
    record_captures
    arm("web.1")
    original = Thread.method(:new)
    refused = 0
    no_threads = lambda do |*args, &block|
      if Thread.current.name == "heapcapture-listener" && refused.zero?
        refused += 1
        raise ThreadError, "can't create Thread: Resource temporarily unavailable"
      end
      original.call(*args, &block)
    end
    first = Thread.stub(:new, no_threads) { HeapCapture.signal("first", wait: 5) }
    assert_equal 1, refused
    assert_equal [["error", "could not start the capture: ThreadError: can't create Thread: Resource temporarily " \
                            "unavailable"]], first.map { |r| r.values_at("status", "error") }
    second = HeapCapture.signal("second", wait: 10)
    assert_equal [%w[ok second]], second.map { |r| r.values_at("status", "payload") }, log_text
    assert_equal "second", next_delivery.first
  end

  def test_the_listener_comes_back_after_pg_terminate_backend
    record_captures
    arm("web.1")
    old = HeapCapture.status[:backend_pid]
    @pg.psql("SELECT pg_terminate_backend(#{old})")
    # One reading of both: while the old connection is dropped its backend pid reads 0 (seen in CI,
    # where two readings straddled the drop and the signal went out before the new LISTEN).
    wait_for("a new connection") do
      status = HeapCapture.status
      status[:connected] && status[:backend_pid].to_i.positive? && status[:backend_pid] != old
    end
    HeapCapture.signal("after terminate")
    assert_equal "after terminate", next_delivery.first
    assert_match(/connection to PostgreSQL lost/, log_text)
    assert_match(/reconnected to PostgreSQL, listening on heapcapture_web_1/, log_text)
  end

  def test_the_listener_comes_back_after_the_server_restarts
    record_captures
    arm("web.1")
    @pg.stop
    wait_for("the listener to notice") { !HeapCapture.status[:connected] }
    sleep 0.5 # a few failed attempts while the server is down
    @pg.start
    wait_for("the listener to reconnect", timeout: 40) { HeapCapture.status[:connected] }
    results = HeapCapture.signal("after restart", wait: 10)
    assert_equal ["ok"], results.map { |r| r["status"] }
    assert_equal "after restart", next_delivery.first
    assert_match(/next attempt in \d+ ms/, log_text)
    assert HeapCapture.status[:armed]
  end

  def test_payloads_arrive_byte_for_byte
    record_captures
    arm("web.1")
    payloads = [
      %q(it's "quoted"), 'back\\slash \\\\ \\n', "$$ dollar $tag$ quoting $$", "unicode: é ü 日本語 🎉",
      "'; DROP TABLE x; --", "line\nbreak\ttab", "é" * 3999 + "x", "a" * 7999
    ]
    payloads.each do |payload|
      HeapCapture.signal(payload)
      got, = next_delivery
      assert_equal payload, got, "payload of #{payload.bytesize} bytes"
      assert_equal Encoding::UTF_8, got.encoding
    end
    assert_equal 7999, payloads[-2].bytesize
    # The result reply carries the 7999-byte payload cut to fit in one notification.
    big = HeapCapture.signal("b" * 7999, wait: 10)
    assert_equal "ok", big.first["status"]
    assert_includes big.first["truncated"], "payload"
    assert big.first["payload"].start_with?("bbbb")
  end

  # An exception whose #message raises (or hands back something whose #to_s raises) once escaped
  # the listener loop, ending the thread. Now it is logged by class name and the loop goes on.
  class UnprintableError < StandardError
    def message = raise(NoMethodError, "message is broken too")
  end

  class UnprintableMessage < StandardError
    UNSHOWABLE = Class.new(BasicObject) { def to_s = ::Kernel.raise(::ArgumentError, "cannot show") }

    def message = UNSHOWABLE.new
  end

  def test_an_exception_whose_message_raises_is_logged_by_class_and_the_loop_goes_on
    raises = [UnprintableError, UnprintableMessage]
    received = Queue.new
    handler = lambda do |notes|
      notes.each do |_channel, _pid, payload|
        received << payload
        error = raises.shift
        raise error if error
      end
    end
    connection = HeapCapture::Listener::Connection.new(@pg.url, "heapcapture_handler_test", "heapcapture test", true)
    thread = connection.run(handler)
    thread.report_on_exception = false
    wait_for("the connection to listen") { connection.connected? }
    # One at a time: a handler that raises drops the rest of its batch.
    %w[first second third].each_with_index do |payload, i|
      @pg.psql("NOTIFY heapcapture_handler_test, '#{payload}'")
      wait_for("the handler to receive #{payload}") { received.size == i + 1 || !thread.alive? }
    end

    assert thread.alive?, "the listener thread is still running"
    assert_equal %w[first second third], Array.new(3) { received.pop }
    assert_includes log_text, "the notification handler failed: ListenerTest::UnprintableError " \
                              "(its #message raised NoMethodError too); still listening"
    assert_includes log_text, "the notification handler failed: ListenerTest::UnprintableMessage " \
                              "(its #message raised ArgumentError too); still listening"
  ensure
    connection&.stop
    thread&.join(5)
  end
end
