# frozen_string_literal: true

require "test_helper"
require "timeout"
require_relative "support/listener_helpers"

# puma in cluster mode with preload_app!: the master arms before it forks (so every worker
# inherits a listener), and each worker calls exclusive in on_worker_boot. Every process must end
# up with a working listener of its own, and none may break another's session.
class PumaForkTest < HCTest::TestCase
  include HCTest::ListenerHelpers

  def test_a_preloaded_master_and_its_workers_each_listen_and_reply
    dir = Dir.mktmpdir("heapcapture-puma-")
    config = File.join(dir, "puma.rb")
    File.write(config, <<~RUBY)
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
    log = File.join(dir, "puma.log")
    pid = Process.spawn({ "DYNO" => "web.1", "DATABASE_URL" => @pg.url }, RbConfig.ruby, Gem.bin_path("puma", "puma"),
                        "-C", config, out: log, err: log, pgroup: true)
    (@children ||= []) << pid
    wait_for("the master and two workers to listen (log #{log})", timeout: 30) { heapcapture_backends.size == 3 }
    before = heapcapture_backends.sort
    results = HeapCapture.signal("puma", wait: 15)
    assert_equal 3, results.size, "#{results.inspect}\n#{File.read(log)}"
    assert_equal 3, results.map { |r| r["pid"] }.uniq.size
    assert_includes results.map { |r| r["pid"] }, pid, "the master still listens after forking its workers"
    assert_equal ["puma:puma"], results.map { |r| r["location"] }.uniq
    assert_equal before, heapcapture_backends.sort, "no session was broken or replaced"
    refute_match(/connection to PostgreSQL lost/, File.read(log))
  ensure
    if pid
      Process.kill("TERM", -pid) rescue nil # rubocop:disable Style/RescueModifier
      begin
        Timeout.timeout(15) { Process.waitpid(pid) }
      rescue Timeout::Error
        Process.kill("KILL", -pid)
        Process.waitpid(pid)
      rescue Errno::ECHILD
        nil
      end
      @children.delete(pid)
    end
    FileUtils.rm_rf(dir) if dir
  end
end
