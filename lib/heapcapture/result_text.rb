# frozen_string_literal: true

module HeapCapture
  # How results are shown to a person: one line each (the CLI and the Rake task print these).
  module ResultText
    module_function

    # "web.1 pid 42: ok s3://bucket/key 1234 bytes https://... (app paused 9.8 ms, ...) tracing full"
    def line(result)
      who = "#{result['dyno'] || '?'} pid #{result['pid'] || '?'}"
      return "#{who}: #{outcome(result)}" unless result["status"] == "ok"

      tracing = result["tracing"] ? " tracing #{result['tracing']}" : ""
      "#{who}: #{outcome(result)}#{result['url'] ? " #{result['url']}" : ''}#{timings(result)}#{tracing}"
    end

    # A result in a few words, for the line above and the listener's log line:
    # "ok s3://bucket/key 1234 bytes" or "error <message>".
    def outcome(result)
      return "#{result['status'] || 'error'} #{result['error'] || '(no message)'}" unless result["status"] == "ok"

      "ok #{result['location']}#{result['bytes'] ? " #{result['bytes']} bytes" : ''}"
    end

    # " (app paused 9.8 ms, dump 3084 ms, stored 211 ms later)", from what the result has. The
    # upload runs during the dump; upload_ms is what it took beyond the dump.
    def timings(result)
      labels = { "pause_ms" => ["app paused", ""], "dump_ms" => ["dump", ""], "upload_ms" => ["stored", " later"] }
      parts = labels.filter_map do |key, (label, tail)|
        "#{label} #{format_ms(result[key])}#{tail}" if result[key].is_a?(Numeric)
      end
      parts.empty? ? "" : " (#{parts.join(', ')})"
    end

    # "extra memory 52 MB of a 512 MB limit", "extra memory 52 MB", or "extra memory unknown".
    def memory(result)
      extra = result["extra_memory_bytes"]
      limit = result["memory_limit_bytes"]
      text = "extra memory #{extra ? Size.megabytes(extra) : 'unknown'}"
      limit ? "#{text} of a #{Size.megabytes(limit)} limit" : text
    end

    TOP_SITES = 3 # printed under a result line

    # "  heap: 1,234,567 objects, 412.3 MiB memsize" and "  top site: 12.3 MiB in 1,234 objects at
    # app/models/user.rb:12" for the first few sites of the result's summary (none: no object
    # carried its site), a line saying the figures count garbage awaiting GC when the summary has no
    # retention analysis, and a "suspect:" line for each suspect when it has; nothing without a summary.
    def top_sites(result)
      summary = result["summary"]
      return [] unless summary.is_a?(Hash) && summary["sites"].is_a?(Array)

      heap = "  heap: #{Size.count(summary['objects'])} objects, #{Size.human(summary['memsize'])} memsize"
      lines = [heap] + summary["sites"].first(TOP_SITES).map { |s| "  top site: #{site_figures(s)} at #{s['file']}:#{s['line']}" }
      lines + retention_lines(summary)
    end

    # "12.3 MiB in 1,234 objects", or with the retention analysis "12.3 MiB retained in 1,234 objects
    # (40 bytes awaiting GC)". A site the sampled tracer saw gives estimates, its figures scaled by
    # the sampling weight: "~12.3 MiB retained in ~100,000 objects (40 sampled)".
    def site_figures(site)
      held = site.key?("retained_memsize")
      memsize, objects = held ? site.values_at("retained_memsize", "retained_objects") : site.values_at("memsize", "objects")
      text = "#{approx(site, Size.human(memsize))}#{held ? ' retained' : ''} in #{approx(site, Size.count(objects))} " \
             "object#{objects == 1 ? '' : 's'}"
      garbage = held ? site["garbage_memsize"].to_i : 0
      notes = []
      notes << sampled(site) if site["estimated"]
      notes << "#{approx(site, Size.human(garbage))} awaiting GC" if garbage.positive?
      notes.empty? ? text : "#{text} (#{notes.join('; ')})"
    end

    # text (of value) as an estimate ("~12.3 MiB") when figures (a site, a suspect) carry "estimated":
    # scaled from the objects the sampled tracer saw, by its sampling weight (a 0 is no estimate).
    def approx(figures, text, value = nil) = figures["estimated"] && value != 0 ? "~#{text}" : text

    # "40 sampled": the objects an estimate was made from.
    def sampled(figures) = "#{Size.count(figures['sampled'].to_i)} sampled"

    # Under a result: what its summary says of retention.
    def retention_lines(summary)
      unless summary["retained"]
        why = summary["retention"] ? " (#{summary['retention']})" : ""
        return ["  (a tally: garbage awaiting GC counted in; `heapcapture report KEY` tells what is held, by whom)#{why}"]
      end

      held, garbage, own = summary.values_at("retained", "garbage", "own")
      own_part = own && own["memsize"].to_i.positive? ? " (#{Size.human(own['memsize'])} of it heapcapture's own)" : ""
      ["  retained: #{Size.count(held['objects'])} objects, #{Size.human(held['memsize'])} memsize#{own_part}; " \
       "awaiting GC: #{Size.count(garbage['objects'])} objects, #{Size.human(garbage['memsize'])}"] +
        Array(summary["suspects"]).flat_map { |s| ["  suspect: #{suspect_line(s)}", "    path: #{short_path(s)}"] }
    end

    PATH_HOPS = 6 # the last hops a short path shows

    # "ROOT vm > Object > DemoCatalog > Array 0x7f..": a suspect's path from a root on one line, each
    # hop by its name (a class or module's own), else its class, else its type; the middle of a long
    # one left out.
    def short_path(suspect)
      hops = Array(suspect["path"])
      names = hops.map do |h|
        next "ROOT #{h['root']}" if h["root"]

        h["name"] || h["class"] || [h["type"], h["imemo_type"]].compact.join(" ")
      end
      names[-1] = "#{names[-1]} #{hops[-1]['address']}" if hops.size > 1
      length = suspect["path_length"] || hops.size
      return names.join(" > ") if names.size <= PATH_HOPS && length == hops.size

      "#{names.first} > ... (#{length - PATH_HOPS + 1} hops) > #{names.last(PATH_HOPS - 1).join(' > ')}"
    end

    # "181 instances of RoutesProxy retain 14.2 MiB (32.0%) (one: OBJECT (RoutesProxy) 0x.. at app/x.rb:3)";
    # a site's estimated from sampled instances: "~200,000 objects (40 sampled) allocated at ... retain
    # ~12.3 MiB (~32.0%) in ~400,000 objects (the largest: ...)".
    def suspect_line(suspect)
      share = approx(suspect, format("%.1f%%", suspect["share"] * 100))
      held = "#{approx(suspect, Size.human(suspect['retained_memsize']))} (#{share}) in " \
             "#{approx(suspect, Size.count(suspect['retained_objects']))} objects"
      case suspect["kind"]
      when "object" then "#{object(suspect)} retains #{held}"
      when "class" then "#{Size.count(suspect['instances'])} instances of #{suspect['class']} retain #{held} " \
                        "(the largest: #{object(suspect)})"
      else "#{approx(suspect, Size.count(suspect['instances']))} objects#{" (#{sampled(suspect)})" if suspect['estimated']} " \
           "allocated at #{suspect['file']}:#{suspect['line']} retain #{held} (the largest: #{object(suspect)})"
      end
    end

    # "HASH (Hash) 0x7f.. at app/models/user.rb:12", "IMEMO ment 0x..", "CLASS Foo 0x..".
    def object(held)
      what = [held["type"], held["imemo_type"]].compact.join(" ")
      what += " #{held['name']}" if held["name"]
      what += " singleton class#{held['real_class_name'] ? " of a #{held['real_class_name']}" : ''}" if held["singleton"]
      what += " (#{held['class']})" if held["class"] && !held["name"]
      site = held["file"] ? " at #{held['file']}:#{held['line']}" : ""
      "#{what} #{held['address']}#{site}"
    end

    def format_ms(ms)
      ms < 100 ? format("%.1f ms", ms) : format("%d ms", ms.round)
    end

    def all_ok?(results)
      !results.empty? && results.all? { |r| r["status"] == "ok" }
    end

    # What `heapcapture signal` and `rake heapcapture:signal` print once a Signaller has run: the
    # channels notified, or with wait: a line per result on out, and on err a line for each
    # selected dyno that sent no result. True when nothing was awaited, or when every selected
    # dyno sent a result and every result is ok (a scheduler's job must not pass without a dump).
    def print_signal(signaller, out:, err:)
      unless signaller.wait
        signaller.channels.each { |channel| out.puts "signalled #{channel}" }
        return true
      end
      signaller.results.each do |result|
        out.puts line(result)
        top_sites(result).each { |site_line| out.puts site_line }
      end
      missing = signaller.unanswered
      missing.each { |dyno| err.puts Util.prefixed(silence(dyno, signaller.wait)) }
      missing.empty? && all_ok?(signaller.results)
    end

    def silence(dyno, wait)
      seconds = "#{wait.round(3)} s"
      pids = dyno["acknowledged_by"]
      if pids.empty?
        "#{dyno['dyno']}: no reply within #{seconds} on #{dyno['channel']} (is a process armed there? " \
          "see HeapCapture.exclusive)"
      else
        "#{dyno['dyno']}: pid #{pids.join(', pid ')} acknowledged on #{dyno['channel']} but sent no result within " \
          "#{seconds} (a capture still running? wait longer, or see that process's log)"
      end
    end
  end
end
