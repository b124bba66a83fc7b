# frozen_string_literal: true

require "test_helper"
require "open3"
require "zlib"
require "json"
require "heapcapture/cli"
require_relative "../support/s3_helpers"

# `heapcapture list` and `heapcapture fetch` run as subprocesses against the S3 test server and a
# file:// directory.
class CLIStoreTest < HCTest::TestCase
  include HCTest::S3Helpers

  ROOT = HCTest::ROOT
  EXE = File.join(ROOT, "exe/heapcapture")

  def setup
    super
    @prefix = "cli-#{Process.pid}-#{rand(1 << 30)}/"
    @env = { "HEAPCAPTURE_DESTINATION" => "s3://#{bucket}/#{@prefix}" }
    @workdir = File.join(@tmpdir, "work")
    Dir.mkdir(@workdir)
  end

  def heapcapture(*args, env: @env)
    Open3.capture3(env, RbConfig.ruby, EXE, *args, chdir: @workdir)
  end

  # A gzip dump of size pseudo-random ndjson-ish bytes stored under @prefix + name; returns the
  # plain bytes' path and the gzip's path.
  def store_dump(name, size)
    plain = File.join(@tmpdir, "#{name.tr('/', '_')}.plain")
    File.open(plain, "wb") do |f|
      while f.size < size
        f.write(%({"address":"0x#{rand(1 << 40).to_s(16)}","type":"STRING","value":"#{Random.bytes(48).unpack1('H*')}"}\n))
      end
    end
    gz = File.join(@tmpdir, "#{name.tr('/', '_')}.gz")
    Zlib::GzipWriter.open(gz) { |w| File.open(plain, "rb") { |r| IO.copy_stream(r, w) } }
    client.upload(gz, key: "#{@prefix}#{name}")
    [plain, gz]
  end

  def test_help_for_list_and_fetch
    out, _err, status = heapcapture("--help")
    assert status.success?
    assert_match(/^  fetch /, out)
    assert_match(/^  list /, out)
    out, _err, status = heapcapture("list", "--help")
    assert status.success?
    assert_match(/\AUsage: heapcapture list \[options\]/, out)
    assert_includes out, "--prefix P"
    out, _err, status = heapcapture("fetch", "--help")
    assert status.success?
    assert_match(/\AUsage: heapcapture fetch KEY\|latest \[options\]/, out)
    %w[--output --raw --force --prefix latest].each { |word| assert_includes out, word }
    _out, err, status = heapcapture("fetch")
    assert_equal 2, status.exitstatus
    assert_equal "heapcapture: missing argument: KEY (or latest) (see heapcapture fetch --help)\n", err
    _out, err, status = heapcapture("fetch", "")
    assert_equal 2, status.exitstatus
    assert_equal "heapcapture: invalid argument: an empty KEY (see heapcapture fetch --help)\n", err
    _out, err, status = heapcapture("list", "extra")
    assert_equal 2, status.exitstatus
    assert_match(/see heapcapture list --help/, err)
  end

  def test_list_shows_dumps_oldest_first_with_sizes_and_narrows_by_prefix
    _out, _err, status = heapcapture("list")
    assert status.success?
    sizes = { "a/2026-11-21T20-00-00Z-web.1-pid1-heap.ndjson.gz" => 10,
              "a/2026-11-21T20-00-01Z-web.1-pid1-heap.ndjson.gz" => 3000,
              "b/2026-11-21T20-00-02Z-web.2-pid2-heap.ndjson.gz" => 2_000_000 }
    stored = sizes.map do |name, size|
      sleep 1.05 unless name.start_with?("a/2026-11-21T20-00-00Z") # distinct LastModified seconds
      File.size(store_dump(name, size).last)
    end
    client.upload(store_dump("ignored", 10).last, key: "#{@prefix}notes.txt") # not a dump: not listed

    out, err, status = heapcapture("list")
    assert status.success?, err
    lines = out.lines.map(&:chomp)
    assert_equal 4, lines.size, out
    sizes.keys.zip(stored).each_with_index do |(name, bytes), i|
      assert_match(/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +\S+ \S+ +#{bytes}  #{Regexp.escape(@prefix + name)}\z/, lines[i])
    end
    assert_includes lines[2], "MiB" if stored[2] > 1024 * 1024
    assert_match(%r{\A3 dumps in s3://#{bucket}/#{Regexp.escape(@prefix)} \(\d+\.\d (KiB|MiB) in all\)\z}, lines[3])

    out, _err, status = heapcapture("list", "--prefix", "a/")
    assert status.success?
    assert_equal 3, out.lines.size, out
    assert_match(%r{\A2 dumps in s3://#{bucket}/#{Regexp.escape(@prefix)}a/ }, out.lines.last)
    out, _err, status = heapcapture("list", "--prefix", "zzz")
    assert status.success?
    assert_equal "no dumps in s3://#{bucket}/#{@prefix}zzz\n", out
  end

  def test_fetch_latest_decompresses_to_exactly_the_original_bytes
    store_dump("old-heap.ndjson.gz", 1000)
    sleep 1.05
    plain, = store_dump("new-heap.ndjson.gz", 3 * 1024 * 1024) # several 1 MiB chunks
    out, err, status = heapcapture("fetch", "latest")
    assert status.success?, err
    target = File.join(@workdir, "new-heap.ndjson")
    assert_equal sha256_file(plain), sha256_file(target)
    assert_equal 0o600, File.stat(target).mode & 0o777
    fetched = "fetched s3://#{bucket}/#{@prefix}new-heap.ndjson.gz to #{target}"
    assert_match(/\A#{Regexp.escape(fetched)} \(3\.\d MiB, #{File.size(plain)} bytes; \d+\.\d (KiB|MiB) stored\)\n\z/, out)
    assert_equal ["new-heap.ndjson"], Dir.children(@workdir), "no temporary file left"
  end

  def test_fetch_raw_keeps_the_gzip_and_o_names_the_file_or_directory
    _plain, gz = store_dump("one-heap.ndjson.gz", 5000)
    out, err, status = heapcapture("fetch", "#{@prefix}one-heap.ndjson.gz", "--raw")
    assert status.success?, err
    assert_equal sha256_file(gz), sha256_file(File.join(@workdir, "one-heap.ndjson.gz"))
    assert_match(/to #{Regexp.escape(File.join(@workdir, 'one-heap.ndjson.gz'))} \(\d/, out)

    sub = File.join(@workdir, "sub")
    Dir.mkdir(sub)
    _out, err, status = heapcapture("fetch", "latest", "-o", "sub")
    assert status.success?, err
    assert File.file?(File.join(sub, "one-heap.ndjson"))
    _out, err, status = heapcapture("fetch", "latest", "-o", "named.json")
    assert status.success?, err
    assert File.file?(File.join(@workdir, "named.json"))
    # The location signal --wait prints is accepted too.
    _out, err, status = heapcapture("fetch", "s3://#{bucket}/#{@prefix}one-heap.ndjson.gz", "-o", "by-location")
    assert status.success?, err
    assert_equal File.binread(File.join(sub, "one-heap.ndjson")), File.binread(File.join(@workdir, "by-location"))
  end

  # A trailing slash means a directory: made when missing, the dump placed inside it.
  def test_fetch_o_dir_slash_creates_the_directory
    plain, = store_dump("d-heap.ndjson.gz", 3000)
    out, err, status = heapcapture("fetch", "latest", "-o", "new/deeper/")
    assert status.success?, err
    target = File.join(@workdir, "new/deeper/d-heap.ndjson")
    assert_equal File.binread(plain), File.binread(target)
    assert_match(/ to #{Regexp.escape(target)} \(/, out)
    assert_equal ["d-heap.ndjson"], Dir.children(File.join(@workdir, "new/deeper"))

    File.write(File.join(@workdir, "a-file"), "x")
    _out, err, status = heapcapture("fetch", "latest", "-o", "a-file/sub/")
    assert_equal 1, status.exitstatus
    assert_equal "heapcapture: creating the directory a-file/sub/: a-file exists and is not a directory\n", err
  end

  # The location of a dump in another bucket (a capture stored elsewhere) is read from that bucket;
  # an s3:// location with a file:// destination is refused in words.
  def test_fetch_a_full_s3_location_in_another_bucket
    other = HCTest::Services::OTHER_BUCKET
    plain, gz = store_dump("elsewhere-heap.ndjson.gz", 3000)
    aws.put_object(bucket: other, key: "#{@prefix}elsewhere-heap.ndjson.gz", body: File.binread(gz))
    out, err, status = heapcapture("fetch", "s3://#{other}/#{@prefix}elsewhere-heap.ndjson.gz", "-o", "from-other")
    assert status.success?, err
    assert_equal File.binread(plain), File.binread(File.join(@workdir, "from-other"))
    assert_match(%r{\Afetched s3://#{other}/#{Regexp.escape(@prefix)}elsewhere-heap.ndjson.gz to }, out)

    _out, err, status = heapcapture("fetch", "s3://#{other}/", "-o", "x")
    assert_equal 1, status.exitstatus
    assert_equal %(heapcapture: "s3://#{other}/" names no object; use s3://bucket/key\n), err

    dir = File.join(@tmpdir, "local")
    _out, err, status = heapcapture("fetch", "s3://#{other}/k", env: { "HEAPCAPTURE_DESTINATION" => "file://#{dir}" })
    assert_equal 1, status.exitstatus
    assert_equal "heapcapture: s3://#{other}/k is in S3, but the destination is file://#{dir}/; set " \
                 "HEAPCAPTURE_DESTINATION (or AWS_S3_BUCKET_NAME) to its bucket to fetch it\n", err
  end

  # With neither HEAPCAPTURE_DESTINATION nor AWS_S3_BUCKET_NAME, list and fetch read a folder on this
  # machine, and say so.
  def test_list_without_a_destination_says_it_lists_a_local_folder
    tmp = File.join(@tmpdir, "t")
    Dir.mkdir(tmp)
    env = { "HEAPCAPTURE_DESTINATION" => nil, "AWS_S3_BUCKET_NAME" => nil, "HEAPCAPTURE_TMPDIR" => tmp }
    out, err, status = heapcapture("list", env: env)
    assert status.success?, err
    assert_equal "no dumps in file://#{tmp}/heapcapture/\n", out
    assert_equal "heapcapture: no destination configured (no HEAPCAPTURE_DESTINATION, no AWS_S3_BUCKET_NAME): " \
                 "using the local folder file://#{tmp}/heapcapture/, where captures of processes on this machine go\n", err
  end

  # gzip allows several members one after another; gunzip decompresses them all, and so do we.
  def test_fetch_decompresses_every_gzip_member
    first_plain, first_gz = store_dump("m1-heap.ndjson.gz", 3000)
    second_plain, second_gz = store_dump("m2-heap.ndjson.gz", 2 * 1024 * 1024)
    both = File.join(@tmpdir, "both.gz")
    File.binwrite(both, File.binread(first_gz) + File.binread(second_gz))
    client.upload(both, key: "#{@prefix}both-heap.ndjson.gz")
    _out, err, status = heapcapture("fetch", "#{@prefix}both-heap.ndjson.gz")
    assert status.success?, err
    assert_equal File.binread(first_plain) + File.binread(second_plain), File.binread(File.join(@workdir, "both-heap.ndjson"))
  end

  def test_fetch_to_stdout
    plain, = store_dump("piped-heap.ndjson.gz", 200_000)
    out, err, status = heapcapture("fetch", "latest", "-o", "-")
    assert status.success?, err
    assert_equal File.binread(plain), out.b
    assert_match(/\Afetched .* to stdout \(/, err)
    assert_empty Dir.children(@workdir)
  end

  def test_fetch_never_overwrites_unless_force
    plain, = store_dump("x-heap.ndjson.gz", 1000)
    target = File.join(@workdir, "x-heap.ndjson")
    File.write(target, "precious")
    out, err, status = heapcapture("fetch", "latest")
    assert_equal 1, status.exitstatus
    assert_equal "", out
    assert_equal "heapcapture: #{target} exists; it was not overwritten (use --force, or -o another file)\n", err
    assert_equal "precious", File.read(target)
    assert_equal ["x-heap.ndjson"], Dir.children(@workdir)

    _out, err, status = heapcapture("fetch", "latest", "--force")
    assert status.success?, err
    assert_equal File.binread(plain), File.binread(target)
  end

  def test_fetch_failures_are_one_line_and_exit_one
    _out, err, status = heapcapture("fetch", "latest")
    assert_equal 1, status.exitstatus
    assert_equal "heapcapture: no dumps in s3://#{bucket}/#{@prefix}; capture one first (heapcapture signal --wait 120)\n", err

    _out, err, status = heapcapture("fetch", "#{@prefix}missing-heap.ndjson.gz")
    assert_equal 1, status.exitstatus
    assert_equal "heapcapture: no dump s3://#{bucket}/#{@prefix}missing-heap.ndjson.gz (S3 answered 404 NoSuchKey); " \
                 "see heapcapture list\n", err

    client.upload(random_file(3000), key: "#{@prefix}corrupt-heap.ndjson.gz")
    _out, err, status = heapcapture("fetch", "latest")
    assert_equal 1, status.exitstatus
    assert_match(/\Aheapcapture: s3:.*corrupt-heap.ndjson.gz is not a whole gzip file \(.+\); fetch it with --raw/, err)
    assert_equal 1, err.lines.size
    assert_empty Dir.children(@workdir), "nothing left behind"

    _out, err, status = heapcapture("list", env: @env.merge("AWS_ACCESS_KEY_ID" => "WRONG"))
    assert_equal 1, status.exitstatus
    assert_match(/\Aheapcapture: S3 answered HTTP 403 InvalidAccessKeyId.*check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/, err)
    assert_equal 1, err.lines.size

    down = "http://127.0.0.1:#{HCTest::Services.free_port}"
    _out, err, status = heapcapture("fetch", "latest", env: @env.merge("AWS_ENDPOINT_URL_S3" => down))
    assert_equal 1, status.exitstatus
    assert_match(/\Aheapcapture: .*Connection refused.*gave up after \d+ attempts\n\z/, err)
    assert_match(%r{ while listing objects in #{Regexp.escape(down)}/#{bucket}[ ;]}, err)
    _out, err, status = heapcapture("fetch", "#{@prefix}k-heap.ndjson.gz", env: @env.merge("AWS_ENDPOINT_URL_S3" => down))
    assert_equal 1, status.exitstatus
    assert_match(%r{ while downloading from #{Regexp.escape(down)}/#{bucket}/#{Regexp.escape(@prefix)}k-heap\.ndjson\.gz[ ;]},
                 err)
  end

  def test_file_destination_list_and_fetch
    dir = File.join(@tmpdir, "dumps")
    Dir.mkdir(dir)
    env = { "HEAPCAPTURE_DESTINATION" => "file://#{dir}" }
    out, _err, status = heapcapture("list", env: env)
    assert status.success?
    assert_equal "no dumps in file://#{dir}/\n", out

    plain, gz = store_dump("f-heap.ndjson.gz", 4000)
    FileUtils.cp(gz, File.join(dir, "2026-11-21T20-00-00Z-web.1-pid7-heap.ndjson.gz"))
    FileUtils.cp(plain, File.join(dir, "2026-11-21T20-00-01Z-web.1-pid7-heap.ndjson"))
    # Ordered by the time stored, not by key: the plain one is older here.
    File.utime(Time.now - 60, Time.now - 60, File.join(dir, "2026-11-21T20-00-01Z-web.1-pid7-heap.ndjson"))
    out, _err, status = heapcapture("list", env: env)
    assert status.success?
    lines = out.lines.map(&:chomp)
    assert_match(/  #{File.size(plain)}  2026-11-21T20-00-01Z-web.1-pid7-heap.ndjson\z/, lines[0])
    assert_match(/  #{File.size(gz)}  2026-11-21T20-00-00Z-web.1-pid7-heap.ndjson.gz\z/, lines[1])
    assert_equal "2 dumps in file://#{dir}/ (#{HeapCapture::Size.human(File.size(gz) + File.size(plain))} in all)", lines[2]

    _out, err, status = heapcapture("fetch", "2026-11-21T20-00-00Z-web.1-pid7-heap.ndjson.gz", env: env)
    assert status.success?, err
    assert_equal File.binread(plain), File.binread(File.join(@workdir, "2026-11-21T20-00-00Z-web.1-pid7-heap.ndjson"))
    _out, err, status = heapcapture("fetch", "latest", "-o", "latest.ndjson", env: env)
    assert status.success?, err
    assert_equal File.binread(plain), File.binread(File.join(@workdir, "latest.ndjson"))
    _out, err, status = heapcapture("fetch", File.join(dir, "2026-11-21T20-00-01Z-web.1-pid7-heap.ndjson"), "-o", "by-path",
                                    env: env)
    assert status.success?, err
    assert_equal File.binread(plain), File.binread(File.join(@workdir, "by-path"))

    _out, err, status = heapcapture("fetch", "../dumps/x-heap.ndjson", env: env)
    assert_equal 1, status.exitstatus
    assert_match(/is not a key in file:/, err)
    _out, err, status = heapcapture("fetch", "nope-heap.ndjson.gz", env: env)
    assert_equal 1, status.exitstatus
    assert_equal "heapcapture: no dump file://#{dir}/nope-heap.ndjson.gz; see heapcapture list\n", err

    # file:///dir/ with a trailing slash, as the s3:// form is written: the same keys
    slash = { "HEAPCAPTURE_DESTINATION" => "file://#{dir}/" }
    _out, err, status = heapcapture("fetch", "latest", "-o", "latest-slash.ndjson", env: slash)
    assert status.success?, err
    assert_equal File.binread(plain), File.binread(File.join(@workdir, "latest-slash.ndjson"))
    out, _err, status = heapcapture("list", env: slash)
    assert status.success?
    assert_match(/  2026-11-21T20-00-00Z-web.1-pid7-heap.ndjson.gz\n/, out)
  end

  # A real capture stored with HeapCapture.capture, fetched back: every line is a heap object.
  def test_fetch_latest_of_a_real_capture
    HeapCapture.configure { |c| c.logger = Logger.new(StringIO.new) }
    result = HeapCapture.capture("cli", destination: "s3://#{bucket}/#{@prefix}", trace_allocations: false)
    assert_equal "ok", result["status"], result["error"]
    out, err, status = heapcapture("fetch", "latest")
    assert status.success?, err
    path = out[/ to (\S+) \(/, 1]
    assert_equal result["raw_bytes"], File.size(path)
    File.foreach(path, encoding: "UTF-8").first(1000).each { |line| assert_kind_of Hash, JSON.parse(line) }
  end
end
