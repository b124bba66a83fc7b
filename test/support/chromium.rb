# frozen_string_literal: true

require "fileutils"
require "io/nonblock"
require "json"
require "tmpdir"

module HCTest
  # A headless Chromium driven over the Chrome DevTools Protocol, for the tests of the HTML report:
  #
  #   HCTest::Chromium.open do |browser|
  #     browser.visit("file://#{page}")
  #     browser.click("#zoom")
  #     browser.screenshot("tmp/test-output/page.png")
  #     assert_empty browser.console_messages
  #   end
  #
  # Stdlib only. The protocol runs over --remote-debugging-pipe: Chromium reads commands on its fd 3
  # and writes replies and events on its fd 4, each a JSON text ended by a NUL byte. No network:
  # every host name resolves to nothing and every non-loopback request goes to a dead loopback
  # proxy, so a request the page makes fails; each one is recorded (#requests) for the test to see,
  # with every console message, uncaught exception and browser log entry (#console_messages).
  class Chromium
    # The browser itself, not Debian's /usr/bin/chromium launcher: that adds flags of its own (an
    # extension to load, API keys for Google's services) that a test must not depend on.
    BINARY = "/usr/lib/chromium/chromium"
    WIDTH = 1280
    HEIGHT = 900
    START_TIMEOUT = 30 # the first command waits for the browser to start: a cold start in a chroot
    COMMAND_TIMEOUT = 10
    # Where tests write what a person may want to look at afterwards (screenshots); git ignores tmp/.
    OUTPUT_DIR = File.expand_path("../../tmp/test-output", __dir__)

    class Error < StandardError; end

    # Starts Chromium, yields it, and always stops it and removes its profile directory.
    def self.open(**options)
      browser = new(**options)
      yield browser
    ensure
      browser&.close
    end

    def initialize(width: WIDTH, height: HEIGHT)
      unless File.executable?(BINARY)
        raise Error, "Chromium is not installed (#{BINARY} missing): run bin/setup, which installs Debian's chromium"
      end

      @width = width
      @height = height
      @dir = Dir.mktmpdir("heapcapture-chromium-")
      @stderr_path = File.join(@dir, "stderr.log")
      @lock = Mutex.new
      @changed = ConditionVariable.new
      @replies = {}
      @next_id = 0
      @console = []
      @requests = []
      @lifecycle = []
      @exit_status = nil
      start
      attach
    rescue StandardError
      close
      raise
    end

    # Navigates to url and waits for its load event; the seconds that took.
    def visit(url, timeout: COMMAND_TIMEOUT)
      started = monotonic
      reply = command("Page.navigate", { url: url }, timeout: timeout)
      raise Error, "Page.navigate #{url}: #{reply['errorText']}" if reply["errorText"]

      loader = reply["loaderId"]
      wait_locked("the load event of #{url}", started + timeout) do
        @lifecycle.any? { |event| event["loaderId"] == loader && event["name"] == "load" }
      end
      monotonic - started
    end

    # The value of a JavaScript expression in the page (a promise is awaited); raises Error with
    # the exception's text when it throws.
    def evaluate(expression, timeout: COMMAND_TIMEOUT)
      reply = command("Runtime.evaluate", { expression: expression, returnByValue: true, awaitPromise: true,
                                            timeout: (timeout * 1000).to_i }, timeout: timeout + 1)
      if (details = reply["exceptionDetails"])
        raise Error, "JavaScript error in #{expression.inspect}: #{details.dig('exception', 'description') || details['text']}"
      end

      reply.dig("result", "value")
    end

    # Waits for a JavaScript expression to be truthy; its value.
    def wait_for(expression, timeout: 5, interval: 0.05)
      deadline = monotonic + timeout
      loop do
        value = evaluate(expression)
        return value if value
        raise Error, "timed out after #{timeout}s waiting for #{expression}" if monotonic > deadline

        sleep interval
      end
    end

    # The mouse moved to viewport coordinates (CSS pixels): what is there gets mouseover.
    def hover_at(left, top)
      command("Input.dispatchMouseEvent", { type: "mouseMoved", x: left, y: top, button: "none", clickCount: 0 })
      nil
    end

    # A left click at viewport coordinates (CSS pixels), as a mouse gives it: move, press, release.
    def click_at(left, top)
      base = { x: left, y: top, button: "left", clickCount: 1 }
      hover_at(left, top)
      command("Input.dispatchMouseEvent", base.merge(type: "mousePressed"))
      command("Input.dispatchMouseEvent", base.merge(type: "mouseReleased"))
      nil
    end

    # A click at the centre of the first element matching a CSS selector (scrolled into view).
    def click(selector)
      x, y = evaluate(<<~JS)
        (() => {
          const element = document.querySelector(#{JSON.generate(selector)});
          if (!element) return null;
          element.scrollIntoView({ block: "nearest", inline: "nearest" });
          const box = element.getBoundingClientRect();
          return [box.left + box.width / 2, box.top + box.height / 2];
        })()
      JS
      raise Error, "no element matches #{selector}" unless x

      click_at(x, y)
    end

    # Text typed into the focused element, as an input method commits it (one input event).
    def insert_text(text)
      command("Input.insertText", { text: text })
      nil
    end

    # A PNG of the viewport written to path; path.
    def screenshot(path)
      data = command("Page.captureScreenshot", { format: "png" }).fetch("data")
      FileUtils.mkdir_p(File.dirname(path))
      File.binwrite(path, data.unpack1("m")) # base64 (the base64 library is no default gem from Ruby 3.4)
      path
    end

    # Console API calls, uncaught exceptions and browser log entries (a failed load's "Failed to
    # load resource" among them), in order: { source:, level:, text:, url: }.
    def console_messages
      @lock.synchronize { @console.map(&:dup) }
    end

    # Every request the page made, in order: { id:, url:, method:, type:, status:, failed:, error: }.
    def requests
      @lock.synchronize { @requests.map(&:dup) }
    end

    # Chromium's stderr so far, for a failure message.
    def stderr
      File.exist?(@stderr_path) ? File.binread(@stderr_path).force_encoding(Encoding::UTF_8).scrub : ""
    end

    # Asks Chromium to quit, kills what is left of its process group after a few seconds, removes
    # the profile. Idempotent.
    def close
      if @pid
        begin
          command("Browser.close", {}, session: nil, timeout: 3) unless @exit_status
        rescue Error, SystemCallError, IOError
          nil
        end
        stop_process
      end
      @reader&.join(3)
      [@commands, @events].each { |io| io.close if io && !io.closed? }
      FileUtils.rm_rf(@dir) if @dir
      @dir = nil
    end

    # One protocol command, on the page's session unless session: nil (the browser); its result.
    def command(method, params = {}, session: @session, timeout: COMMAND_TIMEOUT)
      message = { id: nil, method: method, params: params }
      message[:sessionId] = session if session
      id = @lock.synchronize { message[:id] = @next_id += 1 }
      begin
        @commands.write("#{JSON.generate(message)}\0")
      rescue SystemCallError, IOError => e
        raise Error, "#{method}: cannot write to Chromium (#{e.message})#{stderr_note}"
      end
      reply = wait_locked("a reply to #{method}", monotonic + timeout) { @replies.delete(id) }
      raise Error, "#{method}: #{reply['error']['message']} (#{reply['error']['code']})" if reply["error"]

      reply["result"]
    end

    private

    def flags
      ["--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--user-data-dir=#{@dir}/profile",
       # no traffic of the browser's own: updates, sync, metrics, default apps, extensions
       "--disable-background-networking", "--disable-component-update", "--disable-sync",
       "--disable-domain-reliability", "--no-pings", "--metrics-recording-only", "--disable-default-apps",
       "--disable-extensions", "--no-first-run", "--no-default-browser-check", "--password-store=basic",
       # nothing reaches the network: names resolve to nothing; an IP literal, which no resolver rule
       # catches, goes to a proxy on a loopback port nothing listens on (loopback itself is never proxied)
       "--disable-quic", "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
       # a chroot's or container's /dev/shm may be small: shared memory in the temporary directory instead
       "--disable-dev-shm-usage",
       "--window-size=#{@width},#{@height}", "--hide-scrollbars", "--mute-audio"]
    end

    def start
      command_read, @commands = IO.pipe
      @events, event_write = IO.pipe
      @commands.sync = true
      # Ruby makes its pipes non-blocking; Chromium reads and writes its ends as blocking and takes
      # EAGAIN for the end of the connection.
      [command_read, event_write].each { |io| io.nonblock = false }
      # HOME and XDG: its crash reports and settings' caches in the directory #close removes, not the
      # user's; TZ: a date the page shows reads the same on every machine; its own process group, so
      # that #close reaches the renderers and helpers too
      env = { "HOME" => @dir, "XDG_CONFIG_HOME" => "#{@dir}/config", "XDG_CACHE_HOME" => "#{@dir}/cache", "TZ" => "UTC" }
      @pid = Process.spawn(env, BINARY, *flags,
                           3 => command_read, 4 => event_write, in: File::NULL, out: @stderr_path, err: @stderr_path,
                           pgroup: true, chdir: @dir)
      [command_read, event_write].each(&:close)
      @reader = Thread.new { read_events }
      @reader.report_on_exception = false
    end

    def attach
      target = command("Target.createTarget", { url: "about:blank" }, session: nil, timeout: START_TIMEOUT)
      @session = command("Target.attachToTarget", { targetId: target.fetch("targetId"), flatten: true },
                         session: nil).fetch("sessionId")
      %w[Page.enable Network.enable Runtime.enable Log.enable].each { |method| command(method) }
      command("Page.setLifecycleEventsEnabled", { enabled: true })
      # the viewport exactly width x height CSS pixels at scale 1, whatever the window around it
      command("Emulation.setDeviceMetricsOverride", { width: @width, height: @height, deviceScaleFactor: 1, mobile: false })
    end

    # The reader thread: splits fd 4 at NUL bytes; replies are kept for #command, events recorded.
    def read_events
      buffer = +""
      loop do
        buffer << @events.readpartial(1 << 16)
        while (nul = buffer.index("\0"))
          message = JSON.parse(buffer.slice!(0, nul + 1).chop)
          @lock.synchronize do
            message.key?("id") ? @replies[message["id"]] = message : record(message)
            @changed.broadcast
          end
        end
      end
    rescue IOError, SystemCallError # EOFError among them: Chromium has gone
      @lock.synchronize do
        @closed = true
        @changed.broadcast
      end
    end

    # (under @lock)
    def record(event)
      params = event["params"]
      case event["method"]
      when "Page.lifecycleEvent" then @lifecycle << params
      when "Network.requestWillBeSent"
        request = params["request"]
        @requests << { id: params["requestId"], url: request["url"], method: request["method"], type: params["type"],
                       status: nil, failed: false, error: nil }
      when "Network.responseReceived" then find_request(params) { |r| r[:status] = params.dig("response", "status") }
      when "Network.loadingFailed" then find_request(params) { |r| r.update(failed: true, error: params["errorText"]) }
      when "Runtime.consoleAPICalled"
        text = params["args"].map { |arg| arg.key?("value") ? arg["value"].to_s : arg["description"].to_s }.join(" ")
        @console << { source: "console-api", level: params["type"], text: text,
                      url: params.dig("stackTrace", "callFrames", 0, "url") }
      when "Runtime.exceptionThrown"
        details = params["exceptionDetails"]
        @console << { source: "exception", level: "error", text: details.dig("exception", "description") || details["text"],
                      url: details["url"] }
      when "Log.entryAdded"
        entry = params["entry"]
        @console << { source: entry["source"], level: entry["level"], text: entry["text"], url: entry["url"] }
      end
    end

    # The latest request with the event's id (a redirect reuses the id).
    def find_request(params)
      request = @requests.reverse_each.find { |r| r[:id] == params["requestId"] }
      yield request if request
    end

    # Waits, holding @lock between checks, for the block to return a value; raises Error naming
    # what at the deadline, or when Chromium has gone.
    def wait_locked(what, deadline)
      @lock.synchronize do
        loop do
          value = yield
          return value if value
          raise Error, "Chromium exited while waiting for #{what}#{stderr_note}" if @closed

          left = deadline - monotonic
          raise Error, "no #{what} within the time allowed#{stderr_note}" if left <= 0

          @changed.wait(@lock, left)
        end
      end
    end

    # Its last lines, without the D-Bus complaints a machine with no desktop session always causes.
    def stderr_note
      text = stderr.lines.grep_v(%r{ERROR:dbus/}).last(30).join
      text.empty? ? "" : "; Chromium's stderr ends:\n#{text}"
    end

    def stop_process
      deadline = monotonic + 5
      until (@exit_status = Process.waitpid2(@pid, Process::WNOHANG)&.last)
        break if monotonic > deadline

        sleep 0.05
      end
      begin
        Process.kill("KILL", -@pid) # renderers and helpers left in its group; the browser if it hangs
      rescue Errno::ESRCH, Errno::EPERM
        nil
      end
      @exit_status ||= Process.waitpid2(@pid).last
      @pid = nil
    rescue Errno::ECHILD
      @pid = nil
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
