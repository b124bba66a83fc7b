# frozen_string_literal: true

require "test_helper"
require "json"
require "open3"
require "securerandom"
require "stringio"
require "zlib"
require_relative "../support/file_capture"
require_relative "../support/s3_helpers"

# What both classes below check of an encrypted capture, with Debian's age and age-keygen.
module HCTest
  module AgeChecks
    # Live in this process's heap, so in every dump of it: the store must never hold it in the clear.
    SECRET = SecureRandom.alphanumeric(40)

    private

    # [the identity file, its recipient] made by age-keygen, in @keys
    def keygen(name)
      path = File.join(@keys, "#{name}.txt")
      _, err, status = Open3.capture3("age-keygen", "-o", path)
      assert status.success?, err
      [path, err[/age1[a-z0-9]+/]]
    end

    # age -d with the first identity (@key)
    def age_decrypt(bytes)
      out, err, status = Open3.capture3("age", "-d", "-i", @key, stdin_data: bytes, binmode: true)
      assert status.success?, err
      out
    end

    # The dump and its summary as stored: age files that age decrypts to a gzip of the dump (every
    # line JSON, objects, this process's secret among the strings) and to the summary's JSON.
    def check_encrypted_capture(result, mode, dump, summary)
      assert_equal "ok", result["status"], result["error"]
      assert_equal [mode.to_s, "age"], result.values_at("mode", "encrypted")
      assert_match(/-heap\.ndjson\.gz\.age\z/, result["location"])
      assert_equal result["bytes"], dump.bytesize
      assert dump.start_with?("age-encryption.org/v1\n-> X25519 "), "an age file from its first byte"
      text = Zlib.gunzip(age_decrypt(dump))
      assert_equal result["raw_bytes"], text.bytesize
      lines = text.each_line.map { |line| JSON.parse(line) }
      assert_operator lines.count { |l| l["address"] }, :>, 1000
      assert_includes text, SECRET, "the plaintext holds the secret: the checks of the store mean something"
      stored = JSON.parse(age_decrypt(summary))
      assert_equal result["summary"]["objects"], stored["objects"]
      assert_match(/\Askipped: the dump is encrypted \(encrypt_to\) and this process holds no identity/,
                   result["summary"]["retention"])
    end

    # objects: {name => its raw bytes as stored}
    def assert_no_secret(objects)
      assert_operator objects.size, :>=, 4
      objects.each { |name, bytes| refute_includes bytes.b, SECRET.b, "#{name} holds the secret in the clear" }
    end
  end
end

# encrypt_to: every stored dump and summary is an age file, written as the dump streams, which
# Debian's age decrypts; no byte of the app's secrets is anywhere in the store; report, path, diff
# and fetch read it with HEAPCAPTURE_IDENTITY as they read the plaintext, and say in one line what
# is wrong without it, with the wrong one, or with a file cut short.
class EncryptionTest < HCTest::TestCase
  include HCTest::FileCapture
  include HCTest::AgeChecks

  ROOT = HCTest::ROOT
  EXE = File.join(ROOT, "exe/heapcapture")

  def setup
    use_file_destination
    @keys = Dir.mktmpdir("hc-age-keys-")
    @work = Dir.mktmpdir("hc-age-work-")
    @key, @recipient = keygen("one")
  end

  def teardown
    remove_file_destination
    FileUtils.rm_rf([@keys, @work])
  end

  def test_captures_in_both_modes_to_a_folder_are_age_files_of_the_dump_and_the_summary
    %i[fork inline].each do |mode|
      result = HeapCapture.capture(mode: mode, encrypt_to: @recipient)
      check_encrypted_capture(result, mode, File.binread(result["location"]),
                              File.binread(summary_path(result["location"])))
    end
    assert_empty Dir.children(@tmpdir), "no tempfile left behind"
    assert_no_secret(Dir.glob("#{@dest}/**/*").select { |f| File.file?(f) }.to_h { |f| [f, File.binread(f)] })
  end

  def test_report_path_diff_and_fetch_read_encrypted_dumps_as_they_read_the_plaintext
    second_key, second_recipient = keygen("two")
    old = HeapCapture.capture(mode: :fork, encrypt_to: "#{@recipient}, #{second_recipient}")
    new = HeapCapture.capture(mode: :inline, encrypt_to: [@recipient, second_recipient])
    keys = [old, new].map { |r| File.basename(r["location"]) }
    plain = [old, new].map.with_index { |r, i| decrypt_to_file(r["location"], "plain-#{i}-heap.ndjson.gz") }

    want = cli_json("report", plain[1], "--json")
    [@key, second_key].each do |identity| # two recipients: each identity reads it
      assert_equal want, cli_json("report", keys[1], "--json", identity: identity)
    end
    assert_equal want, cli_json("report", "latest", "--json", identity: @key)

    args = ["--class", "String", "--all", "3", "--json"]
    assert_equal cli_json("path", plain[1], *args), cli_json("path", keys[1], *args, identity: second_key)

    want = cli_json("diff", *plain, "--json")
    got = cli_json("diff", *keys, "--json", identity: @key)
    assert_equal want.except("caveat"), got.except("caveat")
    refute_match(/not known/, got["caveat"].to_s, "the encrypted summaries beside the dumps were read")

    stored = cli_json("report", keys[1], "--stored", "--json", identity: @key)
    assert_match(/\Askipped: the dump is encrypted \(encrypt_to\)/, stored["retention"])
    assert_operator stored["objects"], :>, 0
    assert_equal new["summary"]["objects"], stored["objects"]

    out, err, status = cli("fetch", keys[1], "-o", "#{@work}/fetched/", identity: @key)
    assert status.success?, err
    fetched = File.join(@work, "fetched", File.basename(keys[1], ".gz.age"))
    assert_match(/\Afetched .+ to #{Regexp.escape(fetched)} \(.+; .+ stored, age-encrypted\)\n\z/, out)
    assert_equal Zlib.gunzip(File.binread(plain[1])), File.binread(fetched)
    out, err, status = cli("fetch", keys[1], "--raw", "-o", "-", identity: second_key)
    assert status.success?, err
    assert_equal File.binread(plain[1]), out.b
  end

  def test_a_gzip_dump_encrypted_by_age_itself_is_read
    plain = File.join(@work, "theirs-heap.ndjson.gz")
    File.binwrite(plain, Zlib.gzip(ObjectSpace.dump_all(output: :string)))
    theirs = File.join(@work, "theirs-heap.ndjson.gz.age")
    _, err, status = Open3.capture3("age", "-r", @recipient, "-o", theirs, plain)
    assert status.success?, err
    assert_equal cli_json("report", plain, "--json"), cli_json("report", theirs, "--json", identity: @key)
  end

  def test_without_the_identity_with_the_wrong_one_or_a_file_cut_short_one_line_and_exit_1
    result = HeapCapture.capture(mode: :fork, encrypt_to: @recipient)
    key = File.basename(result["location"])
    url = "file://#{File.join(@dest, key)}"
    missing = "heapcapture: #{url} is age-encrypted; set HEAPCAPTURE_IDENTITY to the path of an age identity " \
              "file (age-keygen makes one) to read it\n"
    [%W[report #{key}], %W[path #{key} --class String], %W[diff #{key} #{key}], %W[fetch #{key}]].each do |args|
      assert_one_line(missing, *args)
    end
    assert_one_line(missing.sub(url, result["location"]), "report", result["location"])

    wrong, = keygen("wrong")
    assert_one_line(/\Aheapcapture: #{Regexp.escape(url)}: the age file is not for any of these identities \(1 X25519 stanza, /,
                    "report", key, identity: wrong)
    assert_one_line(/\Aheapcapture: HEAPCAPTURE_IDENTITY is .+: line 1 of the identity file is a recipient/,
                    "report", key, identity: write_key("recipient.txt", @recipient))
    assert_one_line(%r{\Aheapcapture: HEAPCAPTURE_IDENTITY is #{@keys}/none, which cannot be read \(No such file},
                    "report", key, identity: File.join(@keys, "none"))

    bytes = File.binread(result["location"])
    cut = File.join(@work, "cut-heap.ndjson.gz.age")
    File.binwrite(cut, bytes[0, bytes.size / 2])
    assert_one_line(/\Aheapcapture: #{Regexp.escape(cut)}: the age file is truncated/, "report", cut, identity: @key)
    bytes[bytes.size / 2] = (bytes.getbyte(bytes.size / 2) ^ 1).chr
    File.binwrite(cut, bytes)
    assert_one_line(/\Aheapcapture: #{Regexp.escape(cut)}: the age file was altered at chunk \d+/, "report", cut,
                    identity: @key)
  end

  def test_a_recipient_that_is_not_one_is_a_configuration_error_naming_which_and_why
    secret_key = File.read(@key)[/AGE-SECRET-KEY-1\w+/]
    cases = {
      "#{@recipient},age1qqqq" =>
        /HEAPCAPTURE_ENCRYPT_TO: recipient 2 of 2 \("age1qqqq"\) is not usable: the recipient is not an age1\.\.\. X25519/,
      secret_key => /recipient 1 of 1 is not usable: the recipient is a secret key \(AGE-SECRET-KEY-1\.\.\.\), not a recipient/,
      "ssh-ed25519 AAAA" => /recipient 1 of 1 is not usable: the recipient is an SSH or PEM key/
    }
    cases.each do |value, want|
      error = assert_raises(HeapCapture::ConfigurationError) { HeapCapture::Configuration.new("HEAPCAPTURE_ENCRYPT_TO" => value) }
      assert_match want, error.message
      refute_includes error.message, secret_key, "a secret key given by mistake is never quoted"
    end
    error = assert_raises(HeapCapture::ConfigurationError) { HeapCapture.capture(encrypt_to: "nope") }
    assert_match(/\Aheapcapture: encrypt_to: recipient 1 of 1 is not usable: /, error.message)
    assert_equal [@recipient], HeapCapture::Configuration.new("HEAPCAPTURE_ENCRYPT_TO" => " #{@recipient.upcase} ,").encrypt_to
    assert_nil HeapCapture::Configuration.new({}).encrypt_to
    assert_empty Dir.children(@dest)
  end

  private

  def write_key(name, text) = File.join(@keys, name).tap { |path| File.write(path, "#{text}\n") }

  def summary_path(location) = File.join(File.dirname(location), HeapCapture::Summary.key_for(File.basename(location)))

  def decrypt_to_file(location, name)
    File.join(@work, name).tap { |path| File.binwrite(path, age_decrypt(File.binread(location))) }
  end

  def cli(*args, identity: nil)
    env = { "HEAPCAPTURE_DESTINATION" => "file://#{@dest}", "HEAPCAPTURE_TMPDIR" => @tmpdir,
            "HEAPCAPTURE_IDENTITY" => identity }
    Open3.capture3(env, RbConfig.ruby, "-I#{File.join(ROOT, 'lib')}", EXE, *args, chdir: @work, binmode: true)
  end

  def cli_json(*args, identity: nil)
    out, err, status = cli(*args, identity: identity)
    assert status.success?, "heapcapture #{args.join(' ')}: #{err}"
    JSON.parse(out)
  end

  def assert_one_line(want, *args, identity: nil)
    out, err, status = cli(*args, identity: identity)
    assert_equal 1, status.exitstatus, "heapcapture #{args.join(' ')}: #{out}#{err}"
    assert_equal 1, err.lines.size, err
    want.is_a?(Regexp) ? assert_match(want, err) : assert_equal(want, err)
  end
end

# The same against the S3 test server: the fork-mode dump uploaded while the child writes it (the
# tempfile being ciphertext from its first byte), the inline one after; every object in the bucket
# read back raw.
class EncryptionS3Test < HCTest::TestCase
  include HCTest::S3Helpers
  include HCTest::AgeChecks

  def setup
    super
    @keys = Dir.mktmpdir("hc-age-keys-")
    @key, @recipient = keygen("one")
    @prefix = "enc-#{Process.pid}-#{rand(1 << 30)}/"
    HeapCapture.configure do |c|
      c.tmpdir = @tmpdir
      c.destination = "s3://#{bucket}/#{@prefix}"
      c.logger = Logger.new(File::NULL)
    end
  end

  def teardown
    FileUtils.rm_rf(@keys)
    super
  end

  def test_captures_in_both_modes_are_age_files_and_the_bucket_holds_no_plaintext
    %i[fork inline].each do |mode|
      result = HeapCapture.capture(mode: mode, encrypt_to: @recipient)
      assert_match(%r{\As3://#{bucket}/#{@prefix}.+-heap\.ndjson\.gz\.age\z}, result["location"])
      key = result["location"].delete_prefix("s3://#{bucket}/")
      check_encrypted_capture(result, mode, object(key), object(HeapCapture::Summary.key_for(key)))
      assert_equal "application/octet-stream", aws.head_object(bucket: bucket, key: key).content_type
    end
    keys = aws.list_objects_v2(bucket: bucket, prefix: @prefix).contents.map(&:key)
    assert_equal 4, keys.size, keys.inspect
    assert(keys.all? { |k| k.end_with?(".age") }, keys.inspect)
    assert_no_secret(keys.to_h { |k| [k, object(k)] })
    assert_empty Dir.children(@tmpdir), "no tempfile left behind"
  end

  private

  def object(key) = aws.get_object(bucket: bucket, key: key).body.read.b
end
