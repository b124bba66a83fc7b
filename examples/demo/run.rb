# frozen_string_literal: true

# The demo's steps, run by bin/demo once bin/setup has installed Ruby and everything else: starts
# a throwaway PostgreSQL and the S3 test server on loopback, boots examples/demo in puma (cluster
# mode, 2 workers, DYNO=web.1, armed with the default sampled tracing), sends it requests while
# `heapcapture signal --trace-for 3 --wait 60` has each worker trace every allocation for 3 s and
# then capture, prints each worker's result, downloads both dumps with the S3 client and prints
# their top allocation sites, both workers' objects together, and what holds the memory in each
# (the retention analysis' leak suspects with their paths from a root): the app's leak.
# Everything it starts is stopped at exit (also on Ctrl-C and on failure). See doc/demo.md.
require "fileutils"
require "json"
require "net/http"
require "open3"
require "rbconfig"
require "securerandom"
require "timeout"
require "tmpdir"
require "zlib"

ROOT = File.expand_path("../..", __dir__)
DEMO = File.join(ROOT, "examples/demo")
BOOT_TIMEOUT = 90   # seconds for both workers to listen
SIGNAL_WAIT = 60    # seconds the CLI waits for the results
TRACE_FOR = 3       # seconds of full allocation tracing before each worker captures
CLIENTS = 2         # threads sending requests meanwhile
TOP = 10

class DemoError < StandardError; end

# Signed end to end, as doc/security.md advises: puma's workers act only on signals signed with it,
# and the CLI signs with it (and opens the sealed location of each result).
ENV["HEAPCAPTURE_SIGNAL_KEY"] ||= SecureRandom.hex(32)

$stdout.sync = true # progress lines and errors in the order they happened

def step(text) = puts("==> #{text}")

def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

def wait_until(what, timeout)
  deadline = now + timeout
  until (value = yield)
    raise DemoError, "timed out after #{timeout} s waiting for #{what}" if now > deadline

    sleep 0.1
  end
  value
end

def start_services!
  step "starting PostgreSQL and the S3 server on 127.0.0.1"
  $LOAD_PATH.unshift File.join(ROOT, "lib")
  require "heapcapture"
  require File.join(ROOT, "test/support/services")
  services = HCTest::Services.start!
  puts "    PostgreSQL #{services.postgres.url}, S3 #{services.s3.endpoint} bucket #{services.s3.bucket}"
  services
end

def start_puma!(workdir, port)
  step "booting examples/demo in puma: cluster mode, 2 workers, DYNO=web.1, port #{port}"
  log = File.join(workdir, "puma.log")
  env = { "DYNO" => "web.1", "PORT" => port.to_s, "HEAPCAPTURE_TMPDIR" => workdir,
          "HEAPCAPTURE_DESTINATION" => "s3://#{HCTest::Services::BUCKET}/demo/", "RUBYLIB" => File.join(ROOT, "lib") }
  pid = Process.spawn(env, RbConfig.ruby, Gem.bin_path("puma", "puma"), "-C", File.join(DEMO, "puma.rb"),
                      chdir: DEMO, out: log, err: log, pgroup: true)
  [pid, log]
end

# puma's log as UTF-8 whatever the locale (it holds a "✔"); names the file when it cannot be read.
def read_log(path) = HCTest::Services.read_log(path)

def armed_workers(postgres)
  postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'heapcapture'").to_i
end

def wait_for_workers!(postgres, pid, log)
  wait_until("both puma workers to arm (log: #{log})", BOOT_TIMEOUT) do
    raise DemoError, "puma exited while booting:\n#{read_log(log)}" if Process.waitpid(pid, Process::WNOHANG)

    armed_workers(postgres) == 2 && read_log(log).lines.grep(/heapcapture: armed/).size == 2
  end
  read_log(log).lines.grep(/heapcapture: armed/).each { |line| puts "    #{line.strip}" }
end

# Requests from CLIENTS threads (a new connection each, so both workers get some) while the block
# runs; each leaves a record behind in the app (its leak). Returns the block's value.
def with_traffic(port)
  stop = false
  failure = nil
  clients = Array.new(CLIENTS) do |c|
    Thread.new do
      n = 0
      Net::HTTP.get_response(URI("http://127.0.0.1:#{port}/products?client=#{c}&n=#{n += 1}")) until stop
      n
    rescue SystemCallError, Net::ReadTimeout, Net::OpenTimeout, IOError => e
      failure ||= e
      n
    end
  end
  begin
    value = yield
  ensure
    stop = true
    sent = clients.sum { |t| t.join(10) ? t.value : 0 }
  end
  raise DemoError, "the demo app did not answer HTTP on port #{port}: #{failure.message}" if failure

  puts "    (#{sent} requests sent meanwhile)"
  value
end

def signal!
  step "exe/heapcapture signal demo --trace-for #{TRACE_FOR} --wait #{SIGNAL_WAIT} (signed with HEAPCAPTURE_SIGNAL_KEY, " \
       "while requests come in)"
  cli = [RbConfig.ruby, File.join(ROOT, "exe/heapcapture"), "signal", "demo", "--trace-for", TRACE_FOR.to_s,
         "--wait", SIGNAL_WAIT.to_s]
  out, err, status = Timeout.timeout(SIGNAL_WAIT + 30) { Open3.capture3(*cli) }
  out.each_line { |line| puts "    #{line}" }
  raise DemoError, "heapcapture signal failed (exit #{status.exitstatus}): #{err.strip}" unless status.success?

  locations = out.lines.filter_map { |line| line[%r{: ok (s3://\S+)}, 1] }
  raise DemoError, "expected two workers' ok results, got:\n#{out}" unless locations.size == 2

  locations
end

def download!(location, workdir)
  bucket, key = location.delete_prefix("s3://").split("/", 2)
  target = File.join(workdir, File.basename(key))
  step "downloading #{key} with HeapCapture::S3::Client"
  bytes = HeapCapture::S3::Client.from_config(HeapCapture.config, bucket: bucket).download(key, to: target)
  puts "    #{bytes} bytes"
  target
end

# Groups the dumps' objects by allocation site (file:line): count and memsize, both workers
# together (which worker got more of the requests in the window is the kernel's choice; alone, a
# worker that got few shows puma's own garbage of the window first).
def allocation_sites(paths)
  sites = Hash.new { |h, k| h[k] = [0, 0] }
  skipped = 0
  paths.each { |path| skipped += add_sites(path, sites) }
  [sites, skipped]
end

def add_sites(path, sites)
  skipped = 0
  Zlib::GzipReader.open(path) do |gz|
    gz.each_line do |line|
      object = JSON.parse(line)
      next unless object["file"]

      site = sites["#{object['file']}:#{object['line']}"]
      site[0] += 1
      site[1] += object["memsize"].to_i
    rescue JSON::ParserError
      skipped += 1 # Ruby 3.1 garbles non-ASCII method names (ruby/ruby#6161)
    end
  end
  skipped
end

def print_sites(sites, skipped)
  step "top #{TOP} allocation sites of both dumps (by object count)"
  rows = sites.sort_by { |site, (count, memsize)| [-count, -memsize, site] }.first(TOP)
  puts format("    %8s  %12s  %s", "objects", "memsize", "file:line")
  rows.each do |site, (count, memsize)|
    puts format("    %8d  %12d  %s", count, memsize, site.delete_prefix("#{ROOT}/"))
  end
  puts "    (#{skipped} line(s) of the dump were not JSON and were skipped)" if skipped.positive?
end

# What holds the memory in each dump, as `heapcapture report` says it: the heap retained and
# awaiting GC, then each leak suspect with its path from a root (the demo's leak: DemoCatalog::SEEN);
# and its HTML page (`heapcapture report FILE --html PAGE`), written to PAGES, which outlive the demo.
PAGES = File.join(ROOT, "tmp/demo")
def print_suspects(paths)
  require "heapcapture/cli"
  require "heapcapture/report_page"
  FileUtils.mkdir_p(PAGES)
  paths.each do |path|
    step "what holds the memory in #{File.basename(path)} (heapcapture report's suspects; " \
         "`heapcapture report FILE` prints the rest, `heapcapture path FILE ADDRESS` any object's path)"
    summary = HeapCapture::Summary.of_file(path, strings: false, tree: HeapCapture::Summary::TREE_SHARE)
    raise DemoError, "no retention analysis of #{path}: #{summary['retention']}" unless summary["retained"]

    page = File.join(PAGES, "#{File.basename(path, '.ndjson.gz')}.html")
    File.write(page, HeapCapture::ReportPage.html(summary, File.basename(path)))
    puts "    page: #{page} (the same as `heapcapture report FILE --html PAGE`: open it in a browser)"

    HeapCapture::CLI::Retention.new($stdout).totals(summary)
    summary["suspects"].each do |suspect|
      puts "    suspect: #{HeapCapture::CLI::Retention.suspect_line(suspect)}"
      HeapCapture::CLI::Retention.path_lines(suspect["path"], suspect["path_length"]).each { |line| puts "      #{line}" }
    end
  end
end

def stop_puma(pid)
  HCTest::Services.stop_group(pid, timeout: 15) if pid
end

puma = nil
workdir = nil
failed = false
%w[INT TERM].each { |sig| trap(sig) { raise Interrupt } }
begin
  services = start_services!
  workdir = Dir.mktmpdir("heapcapture-demo-")
  port = HCTest::Services.free_port
  puma, log = start_puma!(workdir, port)
  wait_for_workers!(services.postgres, puma, log)
  locations = with_traffic(port) { signal! }
  dumps = locations.map { |location| download!(location, workdir) }
  print_sites(*allocation_sites(dumps))
  print_suspects(dumps)
  step "done: both workers captured; everything this demo started is being stopped"
rescue StandardError => e # DemoError, HeapCapture::Error, the services' errors, timeouts
  failed = true
  warn "bin/demo: FAILED: #{e.class}: #{e.message}"
  puma_log = log && File.exist?(log) ? read_log(log) : ""
  warn "bin/demo: puma's log:\n#{puma_log}" unless puma_log.empty? || e.message.include?(puma_log)
rescue Interrupt
  failed = true
  warn "bin/demo: interrupted; stopping what it started"
ensure
  stop_puma(puma)
  HCTest::Services.stop! if defined?(HCTest::Services)
  FileUtils.rm_rf(workdir) if workdir
end
exit(failed ? 1 : 0)
