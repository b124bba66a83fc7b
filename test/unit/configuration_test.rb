# frozen_string_literal: true

require "test_helper"
require "socket"
require "json"
require "stringio"
require "logger"

# Settings, dyno selection and the signal payload, without any service (rake test:unit): what the
# environment gives, the limits (stated once in C, checked once in Ruby), and the errors a user
# reads when a value cannot work.
class ConfigurationTest < HCTest::TestCase
  MIB = 1024 * 1024

  def test_the_environment_gives_the_defaults
    config = HeapCapture::Configuration.new(
      "DATABASE_URL" => "postgres://app@127.0.0.1/app", "AWS_S3_BUCKET_NAME" => "dumps",
      "AWS_DEFAULT_REGION" => "eu-west-1", "HEAPCAPTURE_COMPRESSION" => "none", "HEAPCAPTURE_TRACE" => "false"
    )
    assert_equal "postgres://app@127.0.0.1/app", config.database_url
    assert_equal "s3://dumps/", config.destination
    assert_equal "eu-west-1", config.region
    assert_equal :none, config.compression
    assert_equal :off, config.trace_allocations
    assert_equal 8 * MIB, config.part_size
    assert_equal 4, config.concurrency
    assert_in_delta 0.1, config.suspect_share
    assert_in_delta 0.25, HeapCapture::Configuration.new("HEAPCAPTURE_SUSPECT_SHARE" => "0.25").suspect_share
    assert_equal "postgres://app@127.0.0.1/app",
                 HeapCapture::Configuration.new("HEAPCAPTURE_DATABASE_URL" => "postgres://app@127.0.0.1/app",
                                                "DATABASE_URL" => "postgres://other@127.0.0.1/x").database_url,
                 "HEAPCAPTURE_DATABASE_URL wins"
  end

  def test_the_limits_are_the_c_clients_and_checked_once_for_settings_and_client
    assert_equal 5 * MIB, HeapCapture::S3::MIN_PART_SIZE
    assert_equal 5 * 1024 * MIB, HeapCapture::S3::MAX_PART_SIZE
    assert_equal 64, HeapCapture::S3::MAX_CONCURRENCY
    assert_equal 20, HeapCapture::S3::MAX_ATTEMPTS

    config = HeapCapture::Configuration.new({})
    [HeapCapture::S3::MIN_PART_SIZE, HeapCapture::S3::MAX_PART_SIZE].each do |ok|
      config.part_size = ok
      assert_equal ok, config.part_size
    end
    [HeapCapture::S3::MIN_PART_SIZE - 1, HeapCapture::S3::MAX_PART_SIZE + 1, "8MB", nil].each do |bad|
      setting = assert_raises(HeapCapture::ConfigurationError) { config.part_size = bad }
      client = assert_raises(HeapCapture::ConfigurationError) { client(part_size: bad) }
      assert_equal "heapcapture: part_size must be an Integer from 5 MiB (S3's minimum) to 5 GiB, got #{bad.inspect}",
                   setting.message
      assert_equal setting.message, client.message, "the client says what the setting says"
    end
    [0, 65, 1.5].each do |bad|
      error = assert_raises(HeapCapture::ConfigurationError) { config.concurrency = bad }
      assert_equal "heapcapture: concurrency must be an Integer from 1 to 64, got #{bad.inspect}", error.message
      assert_equal error.message, assert_raises(HeapCapture::ConfigurationError) { client(concurrency: bad) }.message
    end
    error = assert_raises(HeapCapture::ConfigurationError) { client(max_attempts: 21) }
    assert_equal "heapcapture: max_attempts must be an Integer from 1 to 20, got 21", error.message
    assert_equal 64, client(concurrency: 64).concurrency
  end

  def test_a_database_url_must_be_postgresql
    config = HeapCapture::Configuration.new({})
    assert_match(/no database to listen on or signal through: set DATABASE_URL/,
                 assert_raises(HeapCapture::ConfigurationError) { config.database_url! }.message)
    config.database_url = "host=127.0.0.1 dbname=app"
    assert_equal "host=127.0.0.1 dbname=app", config.database_url!
    config.database_url = "mysql2://app:secret@127.0.0.1/app"
    error = assert_raises(HeapCapture::ConfigurationError) { config.database_url! }
    assert_match(/is neither a PostgreSQL URL/, error.message)
    refute_includes error.message, "secret", "the password is not shown"
  end

  def test_unknown_settings_and_bad_values_say_what_is_allowed
    config = HeapCapture::Configuration.new({})
    error = assert_raises(ArgumentError) { config.apply(part_sise: 8 * MIB) }
    assert_match(/unknown setting :part_sise \(known: .*part_size/, error.message)
    assert_raises(HeapCapture::ConfigurationError) { config.apply(compression: :zstd) }
    assert_raises(HeapCapture::ConfigurationError) { config.apply(mode: :thread) }
    [0, 1.5, "10%", "lots"].each do |bad|
      error = assert_raises(HeapCapture::ConfigurationError) { config.apply(suspect_share: bad) }
      assert_equal "heapcapture: suspect_share must be a share of the retained heap above 0 and at most 1 (0.1 for " \
                   "10%), got #{bad.inspect}", error.message
    end
    assert_in_delta 1.0, config.apply(suspect_share: 1).suspect_share
  end

  def test_report_html_is_off_by_default_and_a_boolean
    refute HeapCapture::Configuration.new({}).report_html
    assert HeapCapture::Configuration.new("HEAPCAPTURE_REPORT_HTML" => "true").report_html
    refute HeapCapture::Configuration.new("HEAPCAPTURE_REPORT_HTML" => "0").report_html
    config = HeapCapture::Configuration.new({})
    assert config.apply(report_html: "yes").report_html
    refute config.apply(report_html: false).report_html
    error = assert_raises(HeapCapture::ConfigurationError) do
      HeapCapture::Configuration.new("HEAPCAPTURE_REPORT_HTML" => "maybe")
    end
    assert_equal "heapcapture: HEAPCAPTURE_REPORT_HTML must be true or false (or 1/0, yes/no, on/off), got \"maybe\"",
                 error.message
  end

  def test_min_interval_is_60_s_by_default_a_duration_or_0_for_none
    assert_in_delta 60.0, HeapCapture::Configuration.new({}).min_interval
    { "90" => 90.0, "2m" => 120.0, "0" => 0.0, "off" => 0.0, 0 => 0.0, 1.5 => 1.5 }.each do |value, seconds|
      assert_in_delta seconds, HeapCapture::Configuration.new("HEAPCAPTURE_MIN_INTERVAL" => value.to_s).min_interval,
                      0.001, value.inspect
      assert_in_delta seconds, HeapCapture::Configuration.new({}).apply(min_interval: value).min_interval, 0.001
    end
    [-1, "soon", "-5m"].each do |bad|
      error = assert_raises(HeapCapture::ConfigurationError) { HeapCapture::Configuration.new({}).apply(min_interval: bad) }
      assert_equal "heapcapture: min_interval must be a duration (seconds, or \"30s\", \"1m\"), or 0 for none, " \
                   "got #{bad.inspect}", error.message
    end
  end

  # Refused requests: one line a period, the next one saying how many were not written.
  def test_the_log_throttle_writes_one_line_a_period_and_counts_the_rest
    log = StringIO.new
    HeapCapture.configure { |c| c.logger = Logger.new(log) }
    throttle = HeapCapture::LogThrottle.new(0.3)
    results = Array.new(5) { |i| throttle.write(:warn, "refused #{i}") }
    assert_equal [true, false, false, false, false], results
    sleep 0.35
    assert throttle.write(:warn, "refused 5")
    lines = log.string.lines.grep(/refused/)
    assert_equal 2, lines.size, log.string
    assert_match(/WARN -- : heapcapture: refused 0\n\z/, lines[0])
    assert_match(/heapcapture: refused 5 \(and 4 more like it in the last 0.3 s, not logged\)\n\z/, lines[1])
  ensure
    HeapCapture.configure { |c| c.logger = Logger.new(File::NULL) }
  end

  def test_dyno_selection_and_channel_names
    assert_equal 63, HeapCapture::Dyno::CHANNEL_MAX, "listener.h's limit: PostgreSQL identifiers"
    assert_equal %w[heapcapture_web_1 heapcapture_web_2], HeapCapture::Dyno.channels("web", 2)
    selected = HeapCapture::Dyno.select("web", 2, "DYNO" => "web.2")
    assert selected.selected?
    assert_equal "heapcapture_web_2", selected.channel
    other = HeapCapture::Dyno.select("web", 2, "DYNO" => "worker.1")
    refute other.selected?
    assert_match(/worker\.1/, other.reason)
    assert_raises(ArgumentError) { HeapCapture::Dyno.channels("w" * 60, 1) }
  end

  def test_a_signal_payload_must_be_text_notify_can_carry
    assert_equal "go", HeapCapture::Wire.payload!("go".b)
    { "nul\0byte" => /NUL byte/, "\xff".b => /not valid UTF-8/, nil => /must be a String/,
      "x" * 8000 => /at most 7999/ }.each do |bad, message|
      assert_match message, assert_raises(ArgumentError) { HeapCapture::Wire.payload!(bad) }.message
    end
  end

  def test_trace_allocations_is_sampled_full_or_off_and_true_false_keep_working
    assert_equal :sampled, HeapCapture::Configuration.new({}).trace_allocations, "the default"
    { "sampled" => :sampled, :sampled => :sampled, "full" => :full, "true" => :full, true => :full, :full => :full,
      "off" => :off, "false" => :off, false => :off, :off => :off, " OFF " => :off }.each do |value, mode|
      assert_equal mode, HeapCapture::Configuration.new({}).apply(trace_allocations: value).trace_allocations, value.inspect
    end
    assert_equal :off, HeapCapture::Configuration.new("HEAPCAPTURE_TRACE" => "off").trace_allocations
    error = assert_raises(HeapCapture::ConfigurationError) do
      HeapCapture::Configuration.new({}).apply(trace_allocations: "sometimes")
    end
    assert_equal 'heapcapture: trace_allocations must be sampled, full or off (or true, false), got "sometimes"', error.message
  end

  # A trace request is the one signal that is not the payload as is; every other text, JSON or not,
  # still means "capture now", and a trace_for that cannot work is refused before anything is sent.
  def test_a_trace_request_travels_as_json_and_any_other_text_is_a_plain_payload
    text = HeapCapture::Wire.signal_text("why", 600.0)
    assert_equal({ "heapcapture" => "trace", "trace_for" => 600.0, "payload" => "why" }, JSON.parse(text))
    assert_equal ["why", 600.0], HeapCapture::Wire.parse_signal(text)
    assert_equal "why", HeapCapture::Wire.signal_text("why", nil)
    ['{"trace_for":600}', '{"heapcapture":"other","trace_for":1}', '{"heapcapture":"trace"', "go", ""].each do |plain|
      assert_equal [plain, nil], HeapCapture::Wire.parse_signal(plain), plain
    end
    assert_equal ["", "(none)"], HeapCapture::Wire.parse_signal('{"heapcapture":"trace"}'), "a trace request without its length"
    assert_equal 600.0, HeapCapture::Tracing.window_seconds!(600)
    assert_equal 0.5, HeapCapture::Tracing.window_seconds!("0.5")
    [0, -1, Float::NAN, Float::INFINITY, 86_401, "soon", nil, "(none)", [1]].each do |bad|
      error = assert_raises(ArgumentError, bad.inspect) { HeapCapture::Tracing.window_seconds!(bad) }
      assert_match(/\Aheapcapture: trace_for must be a number of seconds above 0 and at most 86400 \(a day\)/, error.message)
    end
    assert_match(/at most 7999/, assert_raises(ArgumentError) { HeapCapture::Wire.signal_text("x" * 7990, 1) }.message)
  end

  def test_the_dyno_in_results_and_keys_is_the_dyno_name_else_the_host_name
    assert_equal "web.3", HeapCapture::Dyno.label({ "DYNO" => "web.3" })
    assert_equal "run.1", HeapCapture::Dyno.label({ "HEAPCAPTURE_DYNO" => " run.1 ", "DYNO" => "web.3" })
    assert_equal Socket.gethostname.gsub(/[^A-Za-z0-9._-]/, "_"), HeapCapture::Dyno.label({})
    assert_equal "a_b_c", HeapCapture::Dyno.label({ "DYNO" => "a/b c" })
  end

  private

  # Never connects: the client is only made (an endpoint on loopback, in case).
  def client(**options)
    HeapCapture::S3::Client.new(bucket: "heapcapture-unit", region: "us-east-1", endpoint: "http://127.0.0.1:9",
                                access_key_id: "AKIDTEST", secret_access_key: "secret", **options)
  end
end
