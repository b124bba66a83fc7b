# frozen_string_literal: true

require "fileutils"
require "json"
require "net/http"
require "rbconfig"
require "timeout"
require "tmpdir"
require "zlib"
require_relative "bounded_command"

module HCTest
  # Real application servers (Debian's puma, Sidekiq) started as process groups of their own, the
  # real CLI run as a subprocess, and the dumps they store read back from the bucket. Used with
  # ListenerHelpers (wait_for, heapcapture_backends, @children) and S3Helpers (aws).
  module AppHelpers
    ROOT = File.expand_path("../..", __dir__)
    EXE = File.join(ROOT, "exe/heapcapture")
    DEMO_APP = File.join(ROOT, "examples/demo/config.ru")
    STOP_TIMEOUT = 15

    # Writes `config` to puma.rb in a fresh directory and starts puma on it; returns the master's pid.
    # @app_dir holds puma.rb and puma.log (the server's stdout and stderr).
    def start_puma(config, env: {})
      @app_dir ||= Dir.mktmpdir("heapcapture-app-")
      path = File.join(@app_dir, "puma.rb")
      File.write(path, config)
      start_server(env, Gem.bin_path("puma", "puma"), "-C", path)
    end

    # A process group of its own, so that stop_server reaches the workers too.
    def start_server(env, *command)
      @app_dir ||= Dir.mktmpdir("heapcapture-app-")
      @server_log = File.join(@app_dir, "server.log")
      pid = Process.spawn({ "DATABASE_URL" => @pg.url, "RUBYLIB" => File.join(ROOT, "lib") }.merge(env),
                          RbConfig.ruby, *command, out: @server_log, err: @server_log, pgroup: true)
      (@servers ||= []) << pid
      pid
    end

    def server_log
      @server_log && File.exist?(@server_log) ? HCTest::Services.read_log(@server_log) : "(no log)"
    end

    # TERM to the whole group, then KILL after STOP_TIMEOUT seconds.
    def stop_server(pid) = HCTest::Services.stop_group(pid, timeout: STOP_TIMEOUT)

    def stop_servers
      (@servers || []).each { |pid| stop_server(pid) }
      @servers = []
      FileUtils.rm_rf(@app_dir) if @app_dir
      @app_dir = nil
    end

    # exe/heapcapture as a subprocess, killed after `timeout` seconds: [stdout, stderr, exit status].
    def heapcapture_cli(*args, env: {}, timeout: 90)
      run_command({ "DATABASE_URL" => @pg.url }.merge(env), RbConfig.ruby, EXE, *args, timeout: timeout)
    end

    # Any command as a subprocess (in chdir), killed after `timeout` seconds: [stdout, stderr, status].
    def run_command(env, *command, timeout:, chdir: Dir.pwd)
      BoundedCommand.run(env, *command, timeout: timeout, chdir: chdir)
    end

    # "web.1 pid 42: ok s3://bucket/key 1234 bytes https://..." => { pid:, status:, location: }
    # Each result line, with the summary lines printed under it (:summary, "  heap: ...", "  top
    # site: ...", and "  retained: ...", "  suspect: ..." and its "    path: ..." from the retention analysis, or the
    # line saying the figures are a tally).
    def parse_cli_lines(stdout)
      stdout.lines.each_with_object([]) do |line, results|
        if line.start_with?("  heap: ", "  top site: ", "  retained: ", "  suspect: ", "    path: ", "  (a tally: ")
          flunk("a summary line before any result: #{line.inspect}") if results.empty?
          results.last[:summary] << line.chomp
          next
        end
        m = line.match(/\A(\S+) pid (\d+): (\w+) (\S+)/) or flunk("unexpected CLI line #{line.inspect}")
        results << { dyno: m[1], pid: m[2].to_i, status: m[3], location: m[4], line: line, summary: [] }
      end
    end

    # The keys under prefix, listed by our S3 client (aws-sdk-s3's ListObjectsV2 request is one the
    # test server refuses to verify); the objects themselves are read back with aws-sdk-s3.
    def bucket_keys(prefix)
      client.list(prefix: prefix).map { |object| object["key"] }
    end

    # Ruby 3.1's ObjectSpace.dump_all overruns its buffer on a method whose name is not ASCII
    # (ruby/ruby#6161, fixed in 3.2; Sidekiq 6 has two such methods): the "method" field turns into
    # "\u00ff", a NUL and stale bytes (newlines among them), garbling a few neighbouring lines.
    # Those lines are Ruby's, stored exactly as written.
    RUBY31_METHOD_NAME_BUG = /\\u00ff\x00/n

    # Reads an s3:// location back with aws-sdk-s3 and returns its ndjson lines parsed. Every line
    # must be JSON; with ruby31_method_name_bug: true, on Ruby < 3.2, a dump that shows that bug may
    # have up to 1% of lines that are not (they are left out).
    def stored_dump_records(location, ruby31_method_name_bug: false)
      bucket, key = location.delete_prefix("s3://").split("/", 2)
      target = File.join(@app_dir || Dir.tmpdir, "readback-#{Process.pid}-#{rand(1 << 30)}.gz")
      aws.get_object(bucket: bucket, key: key, response_target: target)
      records = []
      broken = []
      Zlib::GzipReader.open(target) do |gz|
        # dump_all writes UTF-8 (a method named ❤ in Sidekiq 7.3); read with no locale, a line is
        # US-ASCII, which json 2.9+ (Ruby 3.4) refuses to convert
        gz.each_line { |line| records << JSON.parse(line.dup.force_encoding(Encoding::UTF_8).scrub) rescue broken << line } # rubocop:disable Style/RescueModifier
      end
      return records if broken.empty?

      tolerated = ruby31_method_name_bug && RUBY_VERSION < "3.2" && broken.any? { |l| RUBY31_METHOD_NAME_BUG.match?(l.b) } &&
                  broken.size * 100 < records.size
      unless tolerated
        flunk "#{broken.size} of #{records.size + broken.size} lines of #{location} are not JSON, e.g. " \
              "#{broken.first[0, 300].inspect}"
      end
      records
    ensure
      File.delete(target) if target && File.exist?(target)
    end

    def http_get(port, path = "/")
      Net::HTTP.start("127.0.0.1", port, open_timeout: 5, read_timeout: 10) { |http| http.get(path) }
    end

    def unique_prefix(name) = "#{name}-#{Process.pid}-#{rand(1 << 30)}/"
  end
end
