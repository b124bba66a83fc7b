# frozen_string_literal: true

require "test_helper"
require_relative "../support/listener_helpers"
require_relative "../support/s3_helpers"
require_relative "../support/app_helpers"

# The whole chain in Debian's puma, driven through the real CLI: on_worker_boot arms each worker
# (sampled tracing, the default), `heapcapture signal --wait 60` makes each dump its heap into the
# test bucket, and with full tracing (a --trace-for window, or started in the master) the dumps say
# where the app's own objects were allocated. The app is examples/demo/config.ru.
class PumaCaptureTest < HCTest::TestCase
  RETAINED_LINE = /\A  retained: [\d,]+ objects, .* memsize( \(.* of it heapcapture's own\))?; awaiting GC: [\d,]+ objects/
  include HCTest::ListenerHelpers
  include HCTest::S3Helpers
  include HCTest::AppHelpers

  def setup
    HCTest::Services.start! # first: the configuration made in super reads the S3 settings from ENV
    super
    @prefix = unique_prefix("puma")
    @port = HCTest::Services.free_port
    @app_tmp = Dir.mktmpdir("heapcapture-app-tmp-")
  end

  def teardown
    stop_servers
    FileUtils.rm_rf(@app_tmp)
    super
  end

  def puma_config(workers:, arm: "on_worker_boot { HeapCapture.exclusive }")
    <<~RUBY
      require "heapcapture"
      HeapCapture.configure { |c| c.logger = Logger.new($stderr) }
      #{workers ? "workers #{workers}" : '# single mode'}
      threads 1, 2
      bind "tcp://127.0.0.1:#{@port}"
      rackup #{DEMO_APP.inspect}
      #{arm}
    RUBY
  end

  def app_env(dyno)
    { "DYNO" => dyno, "HEAPCAPTURE_DESTINATION" => "s3://#{bucket}/#{@prefix}", "HEAPCAPTURE_TMPDIR" => @app_tmp }
  end

  def test_cluster_mode_two_workers_trace_for_2_s_and_each_store_a_dump_that_points_into_the_app
    start_puma(puma_config(workers: 2), env: app_env("web.1"))
    wait_for("both workers to listen (log:\n#{server_log})", timeout: 60) { heapcapture_backends.size == 2 }

    out, err, status = with_requests { heapcapture_cli("signal", "--trace-for", "2", "--wait", "60") }
    assert status.success?, "heapcapture signal failed (#{status.inspect}): #{out}#{err}\n#{server_log}"
    results = parse_cli_lines(out)
    assert_equal 2, results.size, out
    assert_equal %w[ok ok], results.map { |r| r[:status] }
    assert_equal 2, results.map { |r| r[:pid] }.uniq.size, "two different workers answered: #{out}"
    assert_equal ["web.1"], results.map { |r| r[:dyno] }.uniq

    keys = bucket_keys(@prefix)
    results.each do |r|
      assert_match %r{\As3://#{bucket}/#{Regexp.escape(@prefix)}\S+-web\.1-pid#{r[:pid]}-heap\.ndjson\.gz\z}, r[:location]
      assert_includes keys, r[:location].delete_prefix("s3://#{bucket}/")
      assert_match(/ tracing full \(a 2 s window\)\z/, r[:line].chomp)
      assert_match(/\A  heap: [\d,]+ objects, .* memsize\z/, r[:summary].first, "the heap's totals under the result")
      assert_operator r[:summary].count { |l| l.start_with?("  top site: ") }, :>=, 1, r[:summary].join("\n")
      assert(r[:summary].any? { |l| l.match?(RETAINED_LINE) },
             "the retention analysis made at capture time (a small worker: the guard lets it run):\n#{r[:summary].join("\n")}")
      assert_dump_points_into_the_app(r[:location], at_least: 50) # each request in the window leaves 4 behind
    end
    assert_empty Dir.children(@app_tmp), "no tempfile is left behind"
  end

  # preload_app! loads the app in the master: tracing turned on there (doc/integrations.md) reaches
  # the objects the workers inherit.
  def test_preload_app_with_tracing_started_in_the_master_points_into_the_app
    config = puma_config(workers: 2).sub("workers 2", <<~RUBY)
      require "objspace"
      ObjectSpace.trace_object_allocations_start
      workers 2
      preload_app!
    RUBY
    start_puma(config, env: app_env("web.1"))
    wait_for("both workers to listen (log:\n#{server_log})", timeout: 60) { heapcapture_backends.size == 2 }

    results = HeapCapture.signal("preloaded", wait: 60)
    assert_equal %w[ok ok], results.map { |r| r["status"] }, "#{results.inspect}\n#{server_log}"
    assert_dump_points_into_the_app(results.first["location"], at_least: 20_000) # the catalogue
  end

  def test_a_dyno_that_is_not_selected_neither_listens_nor_dumps
    start_puma(puma_config(workers: 2, arm: "on_worker_boot { HeapCapture.exclusive(dynos: 1) }"),
               env: app_env("web.2"))
    wait_for("both workers to boot and say why they are not armed (log:\n#{server_log})", timeout: 60) do
      server_log.scan(/not armed in this process .*DYNO is "web.2", expected web.1/).size == 2
    end
    assert_equal "200", http_get(@port).code

    out, err, status = heapcapture_cli("signal", "--wait", "5")
    assert_equal 1, status.exitstatus, "no reply means exit 1: #{out}#{err}"
    assert_equal "", out
    assert_match(/no reply within 5\.0 s/, err)
    assert_equal [], HeapCapture.signal("go", wait: 2)
    assert_empty heapcapture_backends, "no LISTEN connection was opened"
    assert_empty bucket_keys(@prefix)
    assert_equal "0", @pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'")
  end

  def test_single_mode_arms_the_one_process_and_a_signal_gives_a_dump
    pid = start_puma(puma_config(workers: nil, arm: "HeapCapture.exclusive # single mode: no worker boots"),
                     env: app_env("web.1"))
    wait_for("the single process to listen (log:\n#{server_log})", timeout: 60) { heapcapture_backends.size == 1 }
    wait_for("puma to serve HTTP", timeout: 30) { (http_get(@port).code == "200" rescue false) } # rubocop:disable Style/RescueModifier

    out, err, status = heapcapture_cli("signal", "single", "--wait", "60")
    assert status.success?, "#{out}#{err}\n#{server_log}"
    results = parse_cli_lines(out)
    assert_equal [pid], results.map { |r| r[:pid] }, "the puma process itself captured"
    assert_includes bucket_keys(@prefix), results.first[:location].delete_prefix("s3://#{bucket}/")
    assert_match(/ tracing sampled \((1 in ~\d+ allocations|no sample yet)\)\z/, results.first[:line].chomp, "the default")
    records = stored_dump_records(results.first[:location])
    assert(records.all? { |r| r.is_a?(Hash) && r["type"] }, "every line is a JSON object with a type")
  end

  # S3 unreachable: the reply is an error naming the endpoint, the app keeps serving, nothing left
  # in its tmpdir.
  def test_s3_down_replies_an_error_naming_the_endpoint_and_the_app_keeps_serving
    dead = "http://127.0.0.1:#{HCTest::Services.free_port}"
    pid = start_puma(puma_config(workers: nil, arm: "HeapCapture.exclusive"),
                     env: app_env("web.1").merge("AWS_ENDPOINT_URL_S3" => dead))
    wait_for("the process to listen (log:\n#{server_log})", timeout: 60) { heapcapture_backends.size == 1 }
    wait_for("puma to serve HTTP", timeout: 30) { (http_get(@port).code == "200" rescue false) } # rubocop:disable Style/RescueModifier

    results = HeapCapture.signal("s3 down", wait: 90)
    assert_equal 1, results.size, "#{results.inspect}\n#{server_log}"
    result = results.first
    assert_equal "error", result["status"]
    assert_equal pid, result["pid"]
    assert_includes result["error"], dead.delete_prefix("http://"), "the message names the endpoint"
    assert_nil result["location"]

    assert_equal "200", http_get(@port).code, "the app still serves HTTP"
    assert_equal 1, Process.waitpid(pid, Process::WNOHANG).nil? ? 1 : 0, "puma is still running"
    assert_empty Dir.children(@app_tmp), "the tempfile was removed"
    assert_match(/capture failed: .*#{Regexp.escape(dead.delete_prefix('http://'))}/, server_log)
  end

  private

  # Every line is a JSON object, and at_least were allocated in the app's own file (tracing worked).
  def assert_dump_points_into_the_app(location, at_least:)
    records = stored_dump_records(location)
    assert_operator records.size, :>, 10_000
    assert(records.all? { |r| r.is_a?(Hash) && r["type"] }, "every line is a JSON object with a type")
    in_app = records.select { |r| r["file"] == DEMO_APP }
    assert_operator in_app.size, :>=, at_least, "the app's objects carry their allocation site"
    assert(in_app.all? { |r| r["line"].is_a?(Integer) && r["line"].positive? })
  end

  # Requests to the app (a new connection each, so both workers get some) while the block runs.
  def with_requests
    stop = false
    client = Thread.new do
      count = 0
      http_get(@port, "/products?n=#{count += 1}") until stop || count >= 100_000
      count
    end
    yield
  ensure
    stop = true
    client&.join(15)
  end
end
