# frozen_string_literal: true

require "test_helper"
require_relative "../support/listener_helpers"
require_relative "../support/app_helpers"

# puma in cluster mode with preload_app!: the master arms before it forks (so every worker
# inherits a listener), and each worker calls exclusive in on_worker_boot. Every process must end
# up with a working listener of its own, and none may break another's session.
class PumaForkTest < HCTest::TestCase
  include HCTest::ListenerHelpers
  include HCTest::AppHelpers

  def teardown
    stop_servers
    super
  end

  def test_a_preloaded_master_and_its_workers_each_listen_and_reply
    pid = start_puma(<<~RUBY, env: { "DYNO" => "web.1" })
      require "heapcapture"
      HeapCapture.configure { |c| c.logger = Logger.new($stderr) }
      HeapCapture::Listener.capture_hook = ->(payload) { { "status" => "ok", "location" => "puma:" + payload } }
      workers 2
      preload_app!
      bind "tcp://127.0.0.1:#{HCTest::Services.free_port}"
      app ->(_env) { [200, {}, ["ok"]] }
      HeapCapture.exclusive(trace_allocations: false) # in the master, before the fork
      on_worker_boot { HeapCapture.exclusive(trace_allocations: false) }
    RUBY
    wait_for("the master and two workers to listen", timeout: 30) { heapcapture_backends.size == 3 }
    before = heapcapture_backends.sort
    results = HeapCapture.signal("puma", wait: 15)
    assert_equal 3, results.size, "#{results.inspect}\n#{server_log}"
    assert_equal 3, results.map { |r| r["pid"] }.uniq.size
    assert_includes results.map { |r| r["pid"] }, pid, "the master still listens after forking its workers"
    assert_equal ["puma:puma"], results.map { |r| r["location"] }.uniq
    assert_equal before, heapcapture_backends.sort, "no session was broken or replaced"
    refute_match(/connection to PostgreSQL lost/, server_log)
  end
end
