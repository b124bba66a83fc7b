# frozen_string_literal: true

require "logger"

module HeapCapture
  # One line per event, prefixed "heapcapture:", through the configured logger; never a password.
  module Log
    module_function

    def info(message) = write(:info, message)
    def warn(message) = write(:warn, message)
    def error(message) = write(:error, message)
    def debug(message) = write(:debug, message)

    def write(level, message)
      # UTF-8 first: invalid bytes would make the redaction's regexps raise, losing the whole line.
      HeapCapture.config.logger.public_send(level, Util.prefixed(Redact.text(Util.utf8_scrubbed(message.to_s))))
    rescue StandardError
      nil # logging must never break the host application
    end
  end

  # At most one line a period for one kind of event (refused requests: a storm of them must not
  # become a storm of log lines): the first is written, the rest are counted, and the next line
  # after the period says how many were not written.
  class LogThrottle
    PERIOD = 60 # seconds

    def initialize(period = PERIOD)
      @period = period
      @mutex = Mutex.new
      @last = nil
      @held = 0
    end

    # Writes message at level unless a line was written less than the period ago (then counts it).
    def write(level, message)
      held = @mutex.synchronize do
        now = Util.monotonic
        if @last && now - @last < @period
          @held += 1
          return false
        end
        @last = now
        @held.tap { @held = 0 }
      end
      Log.write(level, held.positive? ? "#{message} (and #{held} more like it in the last #{@period} s, not logged)" : message)
      true
    end
  end

  # The default logger's device: $stdout (whatever it is at the time of the write), flushed after
  # every line. Ruby buffers $stdout when it is a pipe (Heroku, systemd, docker), and a plain
  # Logger.new($stdout) then holds lines back until the buffer fills, a fork or exit.
  class FlushedStdout
    def write(*parts)
      written = $stdout.write(*parts)
      $stdout.flush
      written
    end

    # $stdout is not ours to close
    def close; end
  end

  # Removes credentials from anything that is about to be shown to a person.
  module Redact
    module_function

    # postgres://user:secret@host/db -> postgres://user:***@host/db (also in key=value conninfo)
    def text(str)
      str.gsub(%r{(\w+://[^/\s:@]*:)[^@\s/]*@}, '\1***@').gsub(/(password\s*=\s*)('[^']*'|\S+)/i, '\1***')
    end
    alias url text
    module_function :url
  end
end
