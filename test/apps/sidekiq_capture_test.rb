# frozen_string_literal: true

require "test_helper"
require_relative "../support/listener_helpers"
require_relative "../support/s3_helpers"
require_relative "../support/app_helpers"

# Sidekiq 6 (Debian's ruby-sidekiq) against a real redis-server, armed from
# Sidekiq.configure_server as doc/integrations.md says: a signal to the worker dyno stores a dump.
class SidekiqCaptureTest < HCTest::TestCase
  include HCTest::ListenerHelpers
  include HCTest::S3Helpers
  include HCTest::AppHelpers

  def setup
    HCTest::Services.start! # first: the configuration made in super reads the S3 settings from ENV
    super
    HCTest::Services.redis
    @prefix = unique_prefix("sidekiq")
    @app_tmp = Dir.mktmpdir("heapcapture-sidekiq-tmp-")
  end

  def teardown
    stop_servers
    FileUtils.rm_rf(@app_tmp)
    super
  end

  def test_a_signal_to_the_armed_sidekiq_process_stores_a_dump
    @app_dir = Dir.mktmpdir("heapcapture-app-")
    boot = File.join(@app_dir, "boot.rb")
    File.write(boot, <<~RUBY)
      require "sidekiq"
      require "heapcapture"

      # Armed as the server boots, before the app's code loads: with full tracing, every
      # allocation of that code is traced.
      Sidekiq.configure_server do |_config|
        HeapCapture.exclusive(process_type: "worker", trace_allocations: :full)
      end

      class HeapCaptureTestJob
        include Sidekiq::Worker
        RETAINED = Array.new(2_000) { |i| "job state \#{i}" }
        def perform(n) = n
      end
    RUBY
    env = { "DYNO" => "worker.1", "REDIS_URL" => ENV.fetch("REDIS_URL"),
            "HEAPCAPTURE_DESTINATION" => "s3://#{bucket}/#{@prefix}", "HEAPCAPTURE_TMPDIR" => @app_tmp }
    pid = start_server(env, Gem.bin_path("sidekiq", "sidekiq"), "-r", boot, "-c", "2", "-t", "5")
    wait_for("Sidekiq to arm (log:\n#{server_log})", timeout: 60) { heapcapture_backends.size == 1 }

    out, err, status = heapcapture_cli("signal", "sidekiq", "--process-type", "worker", "--wait", "60")
    assert status.success?, "#{out}#{err}\n#{server_log}"
    results = parse_cli_lines(out)
    assert_equal [["worker.1", pid, "ok"]], results.map { |r| r.values_at(:dyno, :pid, :status) }
    assert_match(/ tracing full\z/, results.first[:line].chomp)
    assert_includes bucket_keys(@prefix), results.first[:location].delete_prefix("s3://#{bucket}/")
    records = stored_dump_records(results.first[:location], ruby31_method_name_bug: true)
    assert(records.any? { |r| r["file"] == boot }, "the job's objects carry their allocation site")
    assert_empty Dir.children(@app_tmp)
  end
end
