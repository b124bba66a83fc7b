# frozen_string_literal: true

require "test_helper"
require "stringio"
require "rbconfig"
require "io/wait"

# HeapCapture::Log: every message reaches the logger as one UTF-8 line, with passwords masked,
# whatever bytes it carries.
class LogTest < HCTest::TestCase
  def setup
    super
    @out = StringIO.new
    HeapCapture.configure { |c| c.logger = Logger.new(@out, formatter: ->(severity, _, _, msg) { "#{severity} #{msg}\n" }) }
  end

  def lines = @out.string.force_encoding(Encoding::UTF_8).lines

  def test_a_message_with_bytes_that_are_not_utf8_is_scrubbed_not_dropped
    payload = "dump \xFF\xFEbinary\xC3".dup.force_encoding(Encoding::UTF_8)
    refute payload.valid_encoding?
    HeapCapture::Log.info("notification: #{payload}")
    assert_equal ["INFO heapcapture: notification: dump \uFFFD\uFFFDbinary\uFFFD\n"], lines
    assert lines.first.valid_encoding?
  end

  def test_a_binary_string_is_read_as_utf8_and_scrubbed
    HeapCapture::Log.warn("caf\xC3\xA9 \x00\x80 end".b)
    assert_equal ["WARN heapcapture: café \u0000\uFFFD end\n"], lines
  end

  def test_a_string_in_another_encoding_is_converted
    HeapCapture::Log.error("caf\xE9".dup.force_encoding(Encoding::ISO_8859_1))
    assert_equal ["ERROR heapcapture: café\n"], lines
  end

  def test_redaction_still_works_on_scrubbed_text
    url = "postgres://app:s3cr\xFFet@db.internal/prod".dup.force_encoding(Encoding::UTF_8)
    HeapCapture::Log.error("connecting to #{url} failed; password=hunter\xFE2 host=db \xFF".dup.force_encoding(Encoding::UTF_8))
    assert_equal ["ERROR heapcapture: connecting to postgres://app:***@db.internal/prod failed; password=*** host=db \uFFFD\n"],
                 lines
    refute_match(/s3cr|hunter/, @out.string)
  end

  def test_valid_utf8_and_non_strings_pass_unchanged
    HeapCapture::Log.info("unicode: é ü 日本語 🎉")
    HeapCapture::Log.info(:a_symbol)
    HeapCapture::Log.info(nil)
    assert_equal ["INFO heapcapture: unicode: é ü 日本語 🎉\n", "INFO heapcapture: a_symbol\n", "INFO heapcapture: \n"],
                 lines
  end

  # With stdout a pipe (Heroku, systemd, docker) Ruby buffers $stdout: each line of the default
  # logger must reach the reader while the process goes on, not at its exit.
  def test_the_default_logger_delivers_each_line_through_a_pipe_at_once
    reader, writer = IO.pipe
    script = 'require "heapcapture"; HeapCapture::Log.error("the first line"); sleep 60'
    pid = Process.spawn({ "RUBYLIB" => File.expand_path("../../lib", __dir__) }, RbConfig.ruby, "-e", script,
                        out: writer, err: File::NULL)
    writer.close
    line = reader.wait_readable(20) && reader.gets
    assert_match(/ERROR -- : heapcapture: the first line$/, line.to_s, "the line arrived while the process ran")
  ensure
    if pid
      Process.kill("KILL", pid)
      Process.waitpid(pid)
    end
    reader&.close
  end
end
