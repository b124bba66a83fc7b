# frozen_string_literal: true

module HeapCapture
  # How results are shown to a person: one line each (the CLI and the Rake task print these).
  module Report
    module_function

    def line(result)
      who = "#{result['dyno'] || '?'} pid #{result['pid'] || '?'}"
      if result["status"] == "ok"
        size = result["bytes"] ? " #{result['bytes']} bytes" : ""
        url = result["url"] ? " #{result['url']}" : ""
        "#{who}: ok #{result['location']}#{size}#{url}#{timings(result)}"
      else
        "#{who}: #{result['status'] || 'error'} #{result['error'] || '(no message)'}"
      end
    end

    # " (app paused 9.8 ms, dump 3084 ms, upload 1211 ms)", from what the result has.
    def timings(result)
      parts = { "pause_ms" => "app paused", "dump_ms" => "dump", "upload_ms" => "upload" }.filter_map do |key, label|
        "#{label} #{format_ms(result[key])}" if result[key].is_a?(Numeric)
      end
      parts.empty? ? "" : " (#{parts.join(', ')})"
    end

    def format_ms(ms)
      ms < 100 ? format("%.1f ms", ms) : format("%d ms", ms.round)
    end

    def all_ok?(results)
      !results.empty? && results.all? { |r| r["status"] == "ok" }
    end
  end
end
